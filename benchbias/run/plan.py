"""``benchbias plan``: what a run will do and cost, before a long run starts.

From the prepared slices (read once, or the cache) and without training anything: the split's slices
per class and subjects, every target fraction's domain sizes and tumor counts with feasibility, the
number of cells, and a compute estimate per method: FLOPs per training step counted by torch's FLOP
counter on one real step at the benchmark's slice size, times the step budget, and hours at the
throughput measured here for a few more steps.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchbias.data.protocol import ProtocolError, Split, fraction_needs, judge_population
from benchbias.foundation.config import Benchmark, DomainConfig, image_shape
from benchbias.foundation.contract import PairedSlices, TrainContext, Translator, UnpairedDomains
from benchbias.nets.scale import to_network
from benchbias.report.tables import text_table
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
    method: str
    flops_per_step: float
    seconds_per_step: float
    steps: int
    cells: int

    @property
    def total_flops(self) -> float:
        return self.flops_per_step * self.steps * self.cells

    @property
    def hours(self) -> float:
        return self.seconds_per_step * self.steps * self.cells / 3600


def measure_step(translator: Translator, image_size: int | tuple[int, int], device: torch.device, extra_steps: int) -> tuple[float, float]:
    """(FLOPs of one training step, seconds per step) of ``translator`` on random slices of the
    benchmark's size: one step under torch's FLOP counter, then ``extra_steps`` timed steps (the
    time of a one-step fit, networks built and first-call costs included, subtracted)."""
    batch = int(translator.hparams.get("batch_size", 1))
    generator = torch.Generator().manual_seed(0)
    images = to_network(torch.rand(2 * batch, 1, *image_shape(image_size), generator=generator))
    data = PairedSlices(images, images.flip(-1)) if translator.paired else UnpairedDomains(images, images.flip(-1))

    def fit(steps: int) -> float:
        ctx = TrainContext(seed=0, device=device, steps=steps, workdir=Path("unused"))
        start = time.perf_counter()
        translator.fit(data, ctx)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    counter = FlopCounterMode(display=False)
    with counter:
        fit(1)
    one = fit(1)
    seconds = (fit(1 + extra_steps) - one) / extra_steps if extra_steps else one
    return float(counter.get_total_flops()), max(seconds, 0.0)


def describe(
    bench: Benchmark, split: Split, case_id: np.ndarray, is_tumor: np.ndarray, unpaired: bool, costs: list[Cost], device: str
) -> tuple[list[str], str | None]:
    """The plan's lines, and the first infeasible fraction's message (None when all fit)."""
    lines = [f"benchmark {bench.name}: protocol {bench.protocol_hash()[:12]}; {len(case_id)} slices of {len(np.unique(case_id))} subjects"]
    train_tumor = int(is_tumor[split.train].sum())
    train_healthy = len(split.train) - train_tumor
    held = np.isin(case_id, split.holdout_subjects)
    rows = [["split", "subjects", "tumor slices", "healthy slices"]]
    rows.append(["train", str(len(split.train_subjects)), str(train_tumor), str(train_healthy)])
    rows.append(["holdout subjects", str(len(split.holdout_subjects)), str(int(is_tumor[held].sum())), str(int((~is_tumor[held]).sum()))])
    rows.append(["holdout set", "", str(int(is_tumor[split.holdout].sum())), str(int((~is_tumor[split.holdout]).sum()))])
    lines += ["", *text_table(rows).splitlines()]
    lines.append(f"train subjects:   {', '.join(split.train_subjects)}")
    lines.append(f"holdout subjects: {', '.join(split.holdout_subjects)}")
    height, width = bench.slices.shape
    lines.append(f"slices: {height} x {width} (rows x columns); translators see them on [-1, {-1.0 + 2.0 * bench.slices.network_max:.3g}]")

    d = bench.domains
    mode = ("target may overlap the source" if d.target_overlaps_source else "source and target disjoint") if unpaired else "paired methods only"
    lines += ["", f"domains: source {d.source_size} at {d.source_tumor_fraction:g} tumor (unpaired), target / pairs {d.target_size}; {mode}"]
    plans = fraction_plans(train_tumor, train_healthy, d, unpaired)
    rows = [["fraction", "source tumor + healthy", "target tumor + healthy", "feasible"]]
    for p in plans:
        source = f"{p.source_tumor} + {p.source_healthy}" if unpaired else "-"
        rows.append([f"{p.ratio:g}", source, f"{p.target_tumor} + {p.target_healthy}", "yes" if p.shortfall is None else "NO: " + p.shortfall.split(": ")[-1]])
    lines += text_table(rows).splitlines()

    judge, judge_problem = judge_plan(bench, split, is_tumor)
    lines += ["", judge]

    n_cells = len(bench.methods) * len(d.target_fractions) * len(bench.seeds)
    lines += ["", f"cells: {len(bench.methods)} methods x {len(d.target_fractions)} fractions x {len(bench.seeds)} seeds = {n_cells}"]
    if costs:
        lines.append(f"compute (FLOPs of one training step by torch's FLOP counter; seconds per step measured here on {device}):")
        rows = [["method", "GFLOP/step", "steps", "cells", "TFLOP", "ms/step", "time here", "achieved GFLOP/s"]]
        for c in costs:
            rate = c.flops_per_step / c.seconds_per_step / 1e9 if c.seconds_per_step else float("nan")
            rows.append(
                [
                    c.method,
                    f"{c.flops_per_step / 1e9:.3g}",
                    str(c.steps),
                    str(c.cells),
                    f"{c.total_flops / 1e12:.3g}",
                    f"{c.seconds_per_step * 1e3:.3g}",
                    duration(c.hours * 3600),
                    f"{rate:.3g}",
                ]
            )
        total_flops, total_hours = sum(c.total_flops for c in costs), sum(c.hours for c in costs)
        rows.append(["total", "", "", str(sum(c.cells for c in costs)), f"{total_flops / 1e12:.3g}", "", duration(total_hours * 3600), ""])
        lines += text_table(rows).splitlines()
        lines.append("translation and judging of the holdout add little; the judge is trained once (or pinned)")
    infeasible = next((p.shortfall for p in plans if p.shortfall), None)
    return lines, (f"domains.target_size: {infeasible}" if infeasible else judge_problem)


def judge_plan(bench: Benchmark, split: Split, is_tumor: np.ndarray) -> tuple[str, str | None]:
    """What the judge trains on and the size it reads (``classifier.population``, ``classifier.image_size``),
    and why that population cannot be drawn (None when it can)."""
    c = bench.classifier
    rows, columns = image_shape(c.image_size) if c.image_size is not None else bench.slices.shape
    what = {"train_targets": "every training subject's slices", "fraction_extremes": "the target domains at fractions 0 and 1"}[c.population]
    try:
        judged = judge_population(split, is_tumor, bench.domains, c.population, bench.split.seed)
    except ProtocolError as exc:
        return f"judge: {c.plugin} on {what}: NO: {exc}", str(exc)
    counts = f"{int(is_tumor[judged].sum())} tumor + {int((~is_tumor[judged]).sum())} healthy real {bench.dataset.target} slices"
    return f"judge: {c.plugin}, {c.steps} steps on {counts} ({what}), read at {rows} x {columns}", None


def check_feasible(message: str | None) -> None:
    if message:
        raise ProtocolError(message)
