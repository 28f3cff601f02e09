"""``benchbias plan``: what a run will do and cost, before a long run starts.

From the prepared slices (read once, or the cache) and without training anything: the split's slices
per class and subjects, every target fraction's domain sizes and tumor counts with feasibility, the
number of cells, memory and disk, the precision, and the benchmark's reference counts beside the
data's. Then, only when asked (``--measure-steps N``), a compute estimate per method computed the way
the run computes: FLOPs per
training step counted by torch's FLOP counter on one real step at the benchmark's slice size; the
median time of a few steps of a program (the fractions a method trains together) at the torch
threads of one of the run's workers; programs per method; and the wall time of all programs spread
over the run's workers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchbias.data.protocol import ProtocolError, Split, fraction_needs, judge_population, unpaired_domains
from benchbias.foundation.config import Benchmark, DomainConfig, image_shape
from benchbias.foundation.contract import PairedSlices, TrainContext, Translator, UnpairedDomains
from benchbias.nets.scale import to_network
from benchbias.report.tables import text_table
from benchbias.run.data_checks import half_line, reference_lines
from benchbias.run.progress import duration


@dataclass(frozen=True)
class FractionPlan:
    ratio: float
    source_tumor: int  # unpaired source domain (0 when every method is paired)
    source_healthy: int
    target_tumor: int  # unpaired target domain, or the pairs of paired methods
    target_healthy: int
    shortfall: str | None  # why this fraction cannot be drawn, or None


def fraction_plans(tumor: int, healthy: int, domains: DomainConfig, unpaired: bool) -> list[FractionPlan]:
    """Domain counts at every target fraction from ``tumor`` + ``healthy`` training slices."""
    plans = []
    for need in fraction_needs(domains, unpaired):
        need_tumor, need_healthy = need.total
        short = []
        if domains.sampling == "with_replacement":  # any non-empty pool can be drawn from as often as asked
            need_tumor, need_healthy = min(need_tumor, 1), min(need_healthy, 1)
        if need_tumor > tumor:
            short.append(f"{need_tumor - tumor} tumor")
        if need_healthy > healthy:
            short.append(f"{need_healthy - healthy} healthy")
        shortfall = (
            (
                f"at target fraction {need.ratio:g} the protocol needs {need_tumor} tumor + {need_healthy} healthy training slices "
                f"({'source + target, disjoint' if need.disjoint else 'each domain' if unpaired else 'pairs'}) but has {tumor} + {healthy}: "
                f"{' and '.join(short)} short"
            )
            if short
            else None
        )
        plans.append(FractionPlan(need.ratio, need.source_tumor, need.source_healthy, need.target_tumor, need.target_healthy, shortfall))
    return plans


@dataclass(frozen=True)
class Cost:
    """A method's training cost as a run computes it: ``program_sizes`` models per program (every
    program of every seed), each program taking ``steps`` steps of ``seconds_per_step`` for a program
    of ``together`` models (a smaller program's step scales with its size)."""

    method: str
    flops_per_step: float  # one model's training step
    seconds_per_step: float  # one step of a program of `together` models, in a run's worker
    steps: int
    program_sizes: tuple[int, ...]
    together: int = 1

    @property
    def cells(self) -> int:
        return sum(self.program_sizes)

    @property
    def total_flops(self) -> float:
        return self.flops_per_step * self.steps * self.cells

    def program_seconds(self) -> list[float]:
        return [self.seconds_per_step * self.steps * size / self.together for size in self.program_sizes]

    @property
    def seconds(self) -> float:
        """Compute time of all the method's programs, one after another."""
        return sum(self.program_seconds())


def wall_seconds(costs: list[Cost], workers: int) -> float:
    """The run's training wall time: every program on ``workers`` workers, each free worker taking the
    longest program left (as the run's scheduler does once it has seen each method's times)."""
    loads = [0.0] * max(1, workers)
    for seconds in sorted((t for c in costs for t in c.program_seconds()), reverse=True):
        loads[loads.index(min(loads))] += seconds
    return max(loads)


def readable(seconds: float) -> str:
    """A duration that never reads as 0: seconds with two digits under ten seconds."""
    return f"{seconds:.2g}s" if seconds < 10 else duration(seconds)


def measure_flops(translator: Translator, image_size: int | tuple[int, int], device: torch.device, amp: bool = True) -> float:
    """FLOPs of one model's training step, by torch's FLOP counter on one real step."""
    counter = FlopCounterMode(display=False)
    with counter:
        _fit(type(translator)(**translator.hparams), image_size, device, 1, 1, amp)
    return float(counter.get_total_flops())


def measure_step(
    translator: Translator, image_size: int | tuple[int, int], device: torch.device, steps: int, together: int = 1, warmup: int = 2, amp: bool = True
) -> float:
    """Seconds per training step of a program of ``together`` models (``fit_together``, as the run
    trains them), at the torch threads now set: the median of ``steps`` steps timed one by one after
    ``warmup`` steps (first calls, allocations). A median of single steps, not a difference of fits:
    one slow step on a busy machine does not move it."""
    stamps = _fit(type(translator)(**translator.hparams), image_size, device, warmup + steps, together, amp)
    times = np.diff(stamps)[warmup:]  # the first difference holds building the networks
    return max(float(np.median(times)), 1e-6)


def _fit(translator: Translator, image_size: int | tuple[int, int], device: torch.device, steps: int, together: int, amp: bool = True) -> list[float]:
    """Train ``together`` models (one: ``fit``) on random slices of the benchmark's size for ``steps``
    steps; the time at the start and after each step."""
    batch = int(translator.hparams.get("batch_size", 1))
    generator = torch.Generator().manual_seed(0)
    images = to_network(torch.rand(2 * batch, 1, *image_shape(image_size), generator=generator))
    data = PairedSlices(images, images.flip(-1)) if translator.paired else UnpairedDomains(images, images.flip(-1))
    stamps = []

    def stamp(step: int, losses: dict[str, float] | None) -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        stamps.append(time.perf_counter())

    contexts = [
        TrainContext(seed=i, device=device, steps=steps, workdir=Path("unused"), amp=amp, on_step=stamp if i == 0 else lambda *_: None) for i in range(together)
    ]
    stamps.append(time.perf_counter())
    if together > 1:
        translator.fit_together([data] * together, contexts)
    else:
        translator.fit(data, contexts[0])
    return stamps


def cost_lines(costs: list[Cost], workers: int, where: str) -> list[str]:
    """The compute table and the wall-time estimate of a run on ``workers`` workers."""
    lines = [f"compute (FLOPs of one model's training step by torch's FLOP counter; seconds per step measured here, as each worker runs, on {where}):"]
    rows = [["method", "GFLOP/step", "steps", "cells", "programs", "ms/step (models)", "TFLOP", "compute"]]
    for c in costs:
        rows.append(
            [
                c.method, f"{c.flops_per_step / 1e9:.3g}", str(c.steps), str(c.cells), str(len(c.program_sizes)),
                f"{c.seconds_per_step * 1e3:.3g} ({c.together})", f"{c.total_flops / 1e12:.3g}", readable(c.seconds),
            ]
        )  # fmt: skip
    total = sum(c.seconds for c in costs)
    rows.append(["total", "", "", str(sum(c.cells for c in costs)), str(sum(len(c.program_sizes) for c in costs)), "", "", readable(total)])
    lines += text_table(rows).splitlines()
    wall = wall_seconds(costs, workers)
    lines.append(
        f"estimated wall time of training: {readable(wall)} on {workers} worker{'s' if workers > 1 else ''} "
        "(each free worker takes the longest program left); data preparation, the judges (trained once, or pinned), "
        "translating and scoring the holdout come on top"
    )
    return lines


def describe(
    bench: Benchmark,
    split: Split,
    case_id: np.ndarray,
    is_tumor: np.ndarray,
    unpaired: bool,
    methods: tuple[str, ...] | None = None,
    maxima: dict[str, float] | None = None,
    half_not_as_stored: tuple[str, ...] | None = (),
) -> tuple[list[str], str | None]:
    """The plan's lines before anything is measured, and the first infeasible fraction's message (None
    when all fit). ``methods``: those the run trains (default: every method of ``bench``); ``maxima``:
    each modality's maximum over the data set, where the preparation computed them."""
    methods = methods if methods is not None else tuple(m.name for m in bench.methods)
    lines = subject_lines(bench, case_id, is_tumor, np.array(split.holdout_subjects), split.holdout)
    train_tumor = int(is_tumor[split.train].sum())
    train_healthy = len(split.train) - train_tumor
    held = np.isin(case_id, split.holdout_subjects)
    height, width = bench.slices.shape
    lines.append(f"slices: {height} x {width} (rows x columns); translators see them on [-1, {-1.0 + 2.0 * bench.slices.network_max:.3g}]")
    if bench.slices.half:
        lines.append(half_line(bench.slices.half, half_not_as_stored))

    d = bench.domains
    mode = ("target may overlap the source" if d.target_overlaps_source else "source and target disjoint") if unpaired else "paired methods only"
    lines += ["", f"domains: source {d.source_size} at {d.source_tumor_fraction:g} tumor (unpaired), target / pairs {d.target_size}; {mode}"]
    plans = fraction_plans(train_tumor, train_healthy, d, unpaired)
    drawn = drawn_domains(bench, split, is_tumor) if d.sampling == "with_replacement" else {}
    rows = [["fraction", "source tumor + healthy", "target tumor + healthy", "feasible"]]
    if drawn:
        lines.append(f"drawn with replacement, each slice kept once: tumor + healthy slices of seed {bench.seeds[0]} (draws in brackets)")
    for p in plans:
        source = f"{p.source_tumor} + {p.source_healthy}" if unpaired else "-"
        target = f"{p.target_tumor} + {p.target_healthy}"
        if drawn:
            source = f"{drawn['source'][0]} + {drawn['source'][1]} ({source})" if unpaired else source
            target = f"{drawn[p.ratio][0]} + {drawn[p.ratio][1]} ({target})"
        rows.append([f"{p.ratio:g}", source, target, "yes" if p.shortfall is None else "NO: " + p.shortfall.split(": ")[-1]])
    lines += text_table(rows).splitlines()

    judge, judge_problem, judged = judge_plan(bench, split, is_tumor)
    lines += ["", judge]

    n_cells = len(methods) * len(d.target_fractions) * len(bench.seeds)
    lines += ["", f"cells: {len(methods)} methods x {len(d.target_fractions)} fractions x {len(bench.seeds)} seeds = {n_cells}"]
    skipped = [m.name for m in bench.methods if m.name not in methods]
    if skipped:
        lines.append(f"not planned: {', '.join(skipped)} (optional or not named; name them with --methods)")
    lines += storage_lines(len(case_id), len(split.holdout), (height, width), n_cells, len(bench.seeds))
    lines.append(f"precision on CUDA: {precision_words(bench)}; on the CPU: float32")
    if bench.reference.is_known():
        ours = {
            **subject_counts(is_tumor, held),
            "holdout_set": len(split.holdout),
            "domain_slices": tuple(sum(drawn[r]) for r in d.target_fractions) if drawn else (d.target_size,) * len(d.target_fractions),
            "judge_slices": judged,
            "source_max": (maxima or {}).get(bench.dataset.source),
            "target_max": (maxima or {}).get(bench.dataset.target),
        }
        lines += ["", *reference_lines(bench, ours)]
    infeasible = next((p.shortfall for p in plans if p.shortfall), None)
    return lines, (f"domains.target_size: {infeasible}" if infeasible else judge_problem)


def subject_lines(bench: Benchmark, case_id: np.ndarray, is_tumor: np.ndarray, held_subjects: np.ndarray, holdout: np.ndarray | None) -> list[str]:
    """The data and its split by subject: slices per class on each side, and of the holdout set when
    it could be drawn (``holdout`` None: it could not)."""
    lines = [f"benchmark {bench.name}: protocol {bench.protocol_hash()[:12]}; {len(case_id)} slices of {len(np.unique(case_id))} subjects"]
    held = np.isin(case_id, held_subjects)
    rows = [["split", "subjects", "tumor slices", "healthy slices"]]
    rows.append(["train", str(len(np.unique(case_id[~held]))), str(int(is_tumor[~held].sum())), str(int((~is_tumor[~held]).sum()))])
    rows.append(["holdout subjects", str(len(held_subjects)), str(int(is_tumor[held].sum())), str(int((~is_tumor[held]).sum()))])
    if holdout is not None:
        rows.append(["holdout set", "", str(int(is_tumor[holdout].sum())), str(int((~is_tumor[holdout]).sum()))])
    lines += ["", *text_table(rows).splitlines()]
    lines.append(f"train subjects:   {', '.join(np.unique(case_id[~held]))}")
    lines.append(f"holdout subjects: {', '.join(held_subjects)}")
    return lines


def split_only(bench: Benchmark, case_id: np.ndarray, is_tumor: np.ndarray, held_subjects: np.ndarray) -> list[str]:
    """What the plan can say when the holdout set cannot be drawn: the split by subject, and the
    reference counts of the data itself."""
    lines = subject_lines(bench, case_id, is_tumor, held_subjects, None)
    if bench.reference.is_known():
        lines += ["", *reference_lines(bench, subject_counts(is_tumor, np.isin(case_id, held_subjects)))]
    return lines


def subject_counts(is_tumor: np.ndarray, held: np.ndarray) -> dict[str, int]:
    """The data's slices per class, in all and on each side of the split (``held``: in a holdout subject)."""
    return {
        "slices": len(is_tumor),
        "tumor_slices": int(is_tumor.sum()),
        "train_tumor": int(is_tumor[~held].sum()),
        "train_healthy": int((~is_tumor[~held]).sum()),
        "holdout_tumor": int(is_tumor[held].sum()),
        "holdout_healthy": int((~is_tumor[held]).sum()),
    }


def drawn_domains(bench: Benchmark, split: Split, is_tumor: np.ndarray) -> dict:
    """Tumor and healthy slices of the source (``"source"``) and of the target at every fraction, as
    drawn for the benchmark's first seed (draws with replacement keep fewer slices than they draw)."""
    seed, counts = bench.seeds[0], {}
    try:
        for ratio in bench.domains.target_fractions:
            domains = unpaired_domains(split.train, is_tumor, bench.domains, ratio, seed)
            counts[ratio] = (int(is_tumor[domains.target].sum()), int((~is_tumor[domains.target]).sum()))
            counts["source"] = (int(is_tumor[domains.source].sum()), int((~is_tumor[domains.source]).sum()))
    except ProtocolError:
        return {}
    return counts


def storage_lines(slices: int, holdout: int, shape: tuple[int, int], cells: int, seeds: int) -> list[str]:
    """Memory for the prepared slices and disk for the translations (float16, one array per cell)."""
    pixels = shape[0] * shape[1]
    memory = slices * pixels * 4 * 3  # source, target and tumor mask, float32
    per_cell = holdout * pixels * 2
    return [
        f"memory: {size_words(memory)} of prepared slices (source, target and tumor mask as float32) in the runner and in each worker",
        f"disk: {size_words(per_cell)} of translations per cell (the holdout in float16), "
        f"{size_words(per_cell * cells / max(seeds, 1))} per seed, {size_words(per_cell * cells)} in all",
    ]


def size_words(size: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.3g} {unit}"
    return f"{int(size)} B"


def precision_words(bench: Benchmark) -> str:
    """What a run does on CUDA, as the benchmark pins it (or a plain run's default)."""
    p = bench.precision
    amp = p.amp if p.amp is not None else True
    tf32 = {None: "TF32 as torch's defaults set it", True: "TF32 on", False: "TF32 off"}[p.tf32]
    pinned = "pinned by the benchmark" if p.is_pinned() else "the run's default; the benchmark pins none"
    return f"{'bfloat16 autocast' if amp else 'float32'}, {tf32} ({pinned})"


def judge_plan(bench: Benchmark, split: Split, is_tumor: np.ndarray) -> tuple[str, str | None, int | None]:
    """What the judge trains on and the size it reads (``classifier.population``, ``classifier.image_size``),
    why that population cannot be drawn (None when it can), and how many slices it is."""
    c = bench.classifier
    rows, columns = image_shape(c.image_size) if c.image_size is not None else bench.slices.shape
    what = {"train_targets": "every training subject's slices", "fraction_extremes": "the target domains at fractions 0 and 1"}[c.population]
    try:
        judged = judge_population(split, is_tumor, bench.domains, c.population, bench.split.seed)
    except ProtocolError as exc:
        return f"judge: {c.plugin} on {what}: NO: {exc}", str(exc), None
    counts = f"{int(is_tumor[judged].sum())} tumor + {int((~is_tumor[judged]).sum())} healthy real {bench.dataset.target} slices"
    return f"judge: {c.plugin}, {c.steps} steps on {counts} ({what}), read at {rows} x {columns}", None, len(judged)


def check_feasible(message: str | None) -> None:
    if message:
        raise ProtocolError(message)
