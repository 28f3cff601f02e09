"""Run a benchmark: prepare data, load (or train once) the pinned judge, then every (method, fraction,
seed) cell.

Each cell is an independent unit of work, stored in ``cells/<method>/`` as soon as it finishes and
skipped on a rerun when its fingerprint matches; ``results.json`` is assembled from the cells.
"""
from __future__ import annotations

import hashlib
import io
import json
import sys
import time
import zipfile
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchbias import __version__, executors, judge, progress
from benchbias.config import Benchmark, ConfigError, ModelConfig, image_shape, stable_hash
from benchbias.contract import PairedSlices, ParamError, TrainContext, Translator, UnpairedDomains
from benchbias.data.slice_set import SliceSet
from benchbias.data.sources import PreparedData, cache_dir, prepare_dataset
from benchbias.errors import BenchbiasError
from benchbias.executors import CellJob
from benchbias.jsonio import dumps, read_json, write_atomically, write_json
from benchbias.plugins import PluginError, Registry
from benchbias.protocol import Split, check_capacity, judge_population, paired_domains, split_subjects, unpaired_domains
from benchbias.report import write_report
from benchbias.results import provenance
from benchbias.schemas import RESULTS_SCHEMA
from benchbias.scores import cell_scores
from benchbias.summary import RANKING_RULE, method_summary, per_fraction, rank
from benchbias.validation import cell_problem, check_results

TRANSLATE_BATCH = 64
CELL_FORMAT = 3  # bump when what a cell computes changes, so stored cells are recomputed
# The shared training core every baseline builds on: a change to it recomputes their cells.
# (What the runner itself computes per cell is versioned by CELL_FORMAT.)
CORE_MODULES = ("contract.py", "protocol.py", "translation.py", "networks.py", "losses.py", "image_pool.py")


def core_code_sha256() -> str:
    folder = Path(__file__).parent
    return stable_hash({name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in CORE_MODULES})


INTENSITY_SCALES = {  # what the MAE's [0, 1] scale means, per slices.normalization
    "percentile": "each volume scaled to [0, 1] (0 = its minimum, the background; 1 = its 99.5th percentile); MAE on that scale",
    "max": "each volume divided by its maximum, to [0, 1]; MAE on that scale",
    "dataset_max": "each modality divided by its maximum over the whole data set, to [0, 1]; MAE on that scale",
}


class TranslatorOutputError(BenchbiasError, ValueError):
    """A translator returned something that is not a translation of the holdout slices."""


@dataclass
class RunOptions:
    out: Path
    device: str = "auto"
    methods: tuple[str, ...] = ()
    data_path: str | None = None
    amp: bool = True
    progress: bool = True
    plugin_dirs: tuple[Path, ...] = field(default_factory=tuple)
    jobs: int | None = 1  # worker processes for cells; 1: in this process; None: executors.default_jobs (the CLI's default)
    executor: str = "local"  # or "ray"
    address: str | None = None  # the Ray cluster's
    threads: int | None = None  # torch threads per worker process (default 1)


def select_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"--device {name}: unknown device (use auto, cpu, cuda or cuda:N)") from None
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device {name}: benchbias runs on cpu or cuda, not {device.type}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return device


def to_network(images: np.ndarray, network_max: float = 1.0) -> torch.Tensor:
    """(N, H, W) in [0, 1] -> (N, 1, H, W) in [-1, -1 + 2 * network_max] ([-1, 1] by default)."""
    return torch.from_numpy(np.ascontiguousarray(images))[:, None] * (2.0 * network_max) - 1.0


def from_network(images: torch.Tensor, network_max: float = 1.0) -> torch.Tensor:
    """The inverse of :func:`to_network`, clamped to the [0, 1] slice scale."""
    return ((images + 1.0) / (2.0 * network_max)).clamp(0.0, 1.0)


def unit_images(images: np.ndarray) -> torch.Tensor:
    """(N, H, W) in [0, 1] -> (N, 1, H, W), as they are."""
    return torch.from_numpy(np.ascontiguousarray(images))[:, None]


def instantiate(registry: Registry, kind: str, model: ModelConfig, where: str, source: str):
    """The plugin class instantiated with validated params, plus its registry entry."""
    try:
        entry = registry.get(kind, model.plugin)
    except PluginError as exc:
        field = f"{where}.plugin" if kind == "translator" and model.plugin != model.name else (where if kind == "translator" else f"{where}.name")
        raise PluginError(f"{source}: {field}: {exc}") from None
    try:
        return entry.cls(**model.params), entry
    except ParamError as exc:
        raise ConfigError(f"{source}: {where}.params: {exc}") from None


def warn(message: str) -> None:
    print(f"benchbias: warning: {message}", file=sys.stderr)


def stored_cell(path: Path, key: str) -> dict[str, Any] | None:
    """The finished cell stored at ``path`` when it is intact and its fingerprint is ``key``, else
    None (compute it). benchbias wrote these files itself, so one that cannot be read is stale, not
    fatal: one warning line naming it, and the cell is computed again."""
    if not path.is_file():
        return None
    try:
        cell = read_json(path)
        problem = cell_problem(cell)
    except (OSError, ValueError) as exc:
        cell, problem = None, f"cannot be read ({type(exc).__name__})"
    if problem is None and cell["fingerprint"] != key:
        return None  # stale: the protocol, plugin, judge or compute settings changed
    if problem is None:
        problem = examples_problem(path.with_suffix("") / "examples.npz")
    if problem is not None:
        warn(f"{path}: {problem}; computing this cell again")
        return None
    return cell


def examples_problem(path: Path) -> str | None:
    """Why a cell's ``examples.npz`` cannot be used, or None when it can."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = {"translated", "holdout_index", "p_tumor"} - set(data.files)
            if missing:
                return f"{path.name} lacks {', '.join(sorted(missing))}"
            for name in data.files:
                data[name]  # decompress every array: a truncated member fails here
    except FileNotFoundError:
        return f"{path.name} is missing"
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        return f"{path.name} cannot be read ({type(exc).__name__})"
    return None


class Run:
    """One invocation of a benchmark into an output folder."""

    def __init__(self, bench: Benchmark, registry: Registry, options: RunOptions) -> None:
        self.bench, self.registry, self.options = bench, registry, options
        self.out = Path(options.out)
        self.device = select_device(options.device)
        wanted = set(options.methods) or {m.name for m in bench.methods}
        unknown = wanted - {m.name for m in bench.methods}
        if unknown:
            raise ConfigError(f"--methods: {', '.join(sorted(unknown))} not in {bench.source_file} (has: {', '.join(m.name for m in bench.methods)})")
        self.methods = [m for m in bench.methods if m.name in wanted]
        # Validate every plugin and parameter before any work starts.
        self.translators = {m.name: instantiate(registry, "translator", m, f"methods.{m.name}", bench.source_file) for m in self.methods}
        self.classifier, self.classifier_entry = instantiate(registry, "classifier", bench.classifier, "classifier", bench.source_file)
        self.judge_trained = False
        self.network_max = bench.slices.network_max
        self.judge_shape = None if bench.classifier.image_size is None else image_shape(bench.classifier.image_size)

    # ---- stages ---------------------------------------------------------------------------

    def prepare(self) -> None:
        self.data: PreparedData = prepare_dataset(
            self.bench.dataset, self.bench.slices, self.registry, self.options.data_path, self.options.progress
        )
        self.slices: SliceSet = self.data.slices
        self.split: Split = split_subjects(self.slices, self.bench.split, self.bench.domains)
        any_unpaired = any(not t.paired for t, _ in self.translators.values())
        check_capacity(self.split.train, self.slices.is_tumor, self.bench.domains, unpaired=any_unpaired)
        self.protocol_key = stable_hash(
            {
                "data": self.data.cache_key,  # these very prepared slices (paths, sizes and mtimes of the files)
                "dataset": asdict(self.bench.dataset),
                "slices": self.bench.to_dict()["slices"],  # options added later enter only when set
                "split": asdict(self.bench.split),
                "domains": {k: v for k, v in asdict(self.bench.domains).items() if k != "target_fractions"},
            }
        )
        holdout = self.slices.take(self.split.holdout)
        self.holdout = holdout
        self.holdout_source = to_network(holdout.source, self.network_max)
        self.holdout_target = from_network(to_network(holdout.target, self.network_max), self.network_max)
        self.holdout_mask = torch.from_numpy(holdout.tumor_mask)[:, None]

    def _context(self, seed: int, steps: int, workdir: Path, label: str) -> tuple[TrainContext, progress.Steps]:
        bar = progress.Steps(label, steps, self.options.progress)

        def on_step(step: int, losses: dict[str, float] | None) -> None:
            bar.update(losses)

        workdir.mkdir(parents=True, exist_ok=True)
        return TrainContext(seed=seed, device=self.device, steps=steps, workdir=workdir, amp=self.options.amp, on_step=on_step), bar

    def resolve_judge(self) -> dict[str, Any]:
        """Load the benchmark's pinned judge (``judges/<benchmark>.pt`` beside its YAML file), else the
        one cached for this protocol and data, else train one into the cache. Its seed is the split
        seed, a part of the protocol: runs of other translator seeds share it."""
        protocol_hash, fingerprint, code = self.bench.protocol_hash(), self.data.fingerprint, self.classifier_entry.code_sha256
        same = tuple(getattr(self.classifier_entry.cls, "same_results_as", ()))
        pinned = judge.JudgeFiles.beside(Path(self.bench.source_file), self.bench.name)
        cached = judge.JudgeFiles.cached(cache_dir(), self.bench.name, protocol_hash, fingerprint)
        if pinned.exist():
            return {**judge.load(pinned, self.classifier, protocol_hash, fingerprint, code, same), "pinned": True, "file": str(pinned.weights)}
        if cached.exist():
            try:
                return {**judge.load(cached, self.classifier, protocol_hash, fingerprint, code, same), "pinned": False, "file": str(cached.weights)}
            except judge.JudgeError as exc:  # benchbias wrote it: a damaged copy is retrained, not fatal
                print(f"benchbias: warning: {exc}; training it again", file=sys.stderr)
        blob, info = self.train_judge()
        judge.store(cached, blob, info)
        self.judge_trained = True
        print(f"judge: trained {info['sha256'][:12]} for this protocol and kept in {cached.weights}; pin it with: benchbias judge train {self.bench.source_file}", file=sys.stderr)
        return {**info, "pinned": False, "file": str(cached.weights)}

    def train_judge(self) -> tuple[bytes, dict[str, Any]]:
        """Train the judge on real target slices of the training subjects, ``classifier.population``
        of them, at ``classifier.image_size`` (after :meth:`prepare`)."""
        c = self.bench.classifier
        train = self.slices.take(judge_population(self.split, self.slices.is_tumor, self.bench.domains, c.population, self.bench.split.seed))
        blob, info = judge.train(
            self.classifier,
            c,
            self.bench.split.seed,
            judge.inputs(unit_images(train.target), self.judge_shape),
            torch.from_numpy(train.is_tumor).long(),
            judge.inputs(unit_images(self.holdout.target), self.judge_shape),
            self.holdout.is_tumor,
            lambda seed, steps, label: self._context(seed, steps, self.out / "judge", label),
        )
        trained_for = {"protocol_hash": self.bench.protocol_hash(), "dataset_fingerprint": self.data.fingerprint, "code_sha256": self.classifier_entry.code_sha256}
        return blob, {**info, **trained_for}

    def cells(self) -> list[tuple[ModelConfig, int, float]]:
        """Every (method, seed, fraction), methods interleaved: each method's cost per cell is known
        after the first few cells (a sound ETA), and an interrupted run has some of every method."""
        return [(m, seed, ratio) for seed in self.bench.seeds for ratio in self.bench.domains.target_fractions for m in self.methods]

    def cell_path(self, job: CellJob) -> Path:
        return self.out / "cells" / job.method / f"r{job.ratio:.3f}-s{job.seed}.json"

    def cell_key(self, method: ModelConfig, seed: int, ratio: float, judge_sha256: str) -> str:
        """What a cell's scores depend on: a change to any of it recomputes the cell on a rerun."""
        translator, entry = self.translators[method.name]
        return stable_hash(
            {
                "format": CELL_FORMAT,
                "protocol": self.protocol_key,
                "judge": judge_sha256,
                "plugin": method.plugin,
                "code": entry.code_sha256,
                "core": core_code_sha256(),
                "params": translator.hparams,
                "steps": method.steps,
                "seed": seed,
                "ratio": ratio,
                "compute": self.compute_settings(),
            }
        )

    def compute_settings(self) -> dict[str, Any]:
        """Device kind, CPU threads per cell and mixed precision: each changes a trained network's numbers."""
        cuda = self.device.type == "cuda"
        return {
            "device": torch.cuda.get_device_name(self.device) if cuda else "cpu",
            "threads": None if cuda else self.cell_threads,
            "amp": bool(self.options.amp and cuda),
        }

    def attach_judge(self, state: dict[str, torch.Tensor]) -> None:
        """Load the judge's weights (already checked by :meth:`resolve_judge`) and call it on the real
        holdout targets: in a worker process, from the bytes the runner sends."""
        self.classifier.load_state_dict(state)
        self.classifier.device = torch.device("cpu")
        self.p_real = self.classifier.predict_proba(judge.inputs(unit_images(self.holdout.target), self.judge_shape)).numpy()

    def compute_cell(self, job: CellJob, report: executors.Report | None, workdir: Path) -> executors.CellOutcome:
        """Train one translator at one target fraction and score its holdout translations (after
        :meth:`prepare` and :meth:`attach_judge`); ``report(label, done, steps, losses)`` sees the steps."""
        method = next(m for m in self.methods if m.name == job.method)
        seed, ratio = job.seed, job.ratio
        template, entry = self.translators[method.name]
        translator: Translator = type(template)(**template.hparams)
        domains = (paired_domains if translator.paired else unpaired_domains)(
            self.split.train, self.slices.is_tumor, self.bench.domains, ratio, seed
        )
        m = self.network_max
        source, target = to_network(self.slices.source[domains.source], m), to_network(self.slices.target[domains.target], m)
        data = PairedSlices(source, target) if translator.paired else UnpairedDomains(source, target)
        # Common random numbers: within a seed every target fraction starts from the same initial
        # weights and batch stream, so differences across fractions come from the target domain's
        # composition rather than from initialisation noise. Seeds are independent replicates.
        torch.manual_seed(seed)
        workdir.mkdir(parents=True, exist_ok=True)

        def on_step(step: int, losses: dict[str, float] | None) -> None:
            if report is not None:
                report(job.label, step + 1, method.steps, losses)

        ctx = TrainContext(seed=seed, device=self.device, steps=method.steps, workdir=workdir, amp=self.options.amp, on_step=on_step)
        start = time.perf_counter()
        translator.fit(data, ctx)
        train_seconds = time.perf_counter() - start
        start = time.perf_counter()
        where = f"methods.{method.name} (plugin {method.plugin}) at target fraction {ratio:g}, seed {seed}"
        raw = torch.cat([self._translate(translator, batch, where) for batch in self.holdout_source.split(TRANSLATE_BATCH)])
        if raw.shape != self.holdout_source.shape:
            raise TranslatorOutputError(f"{where}: translate() returned shape {tuple(raw.shape)} for inputs of shape {tuple(self.holdout_source.shape)}")
        if not torch.isfinite(raw).all():
            raise TranslatorOutputError(f"{where}: translate() returned NaN or infinite values (training diverged?); finished cells are kept")
        low, high = to_network(np.array([[[0.0]], [[1.0]]], np.float32), m).flatten().tolist()  # [0, 1] as the translators saw it
        out_of_range = float(((raw < low) | (raw > high)).float().mean())  # recorded, then clamped
        translated = from_network(raw, m)
        p_translated = self.classifier.predict_proba(judge.inputs(translated, self.judge_shape)).numpy()
        translate_seconds = time.perf_counter() - start
        scores = cell_scores(translated, self.holdout_target, self.holdout_mask, self.holdout.is_tumor, p_translated, self.p_real, out_of_range)
        examples = self.example_indices()
        # The example translations, and the judge's probability on every translation, so the
        # classification scores can be recomputed.
        handle = io.BytesIO()
        np.savez_compressed(handle, translated=translated[examples, 0].numpy().astype(np.float16), holdout_index=examples, p_tumor=p_translated.astype(np.float32))
        cell = {
            "fingerprint": job.key,
            "method": method.name,
            "ratio": ratio,
            "seed": seed,
            "target_tumor_slices": int(self.slices.is_tumor[domains.target].sum()),
            "train_time_s": round(train_seconds, 2),
            "translate_time_s": round(translate_seconds, 2),
            "scores": scores,
        }
        return executors.CellOutcome(cell, handle.getvalue())

    def store_cell(self, job: CellJob, outcome: executors.CellOutcome) -> None:
        """The examples file first, then the cell's JSON: a cell file on disk means a finished cell."""
        path = self.cell_path(job)
        write_atomically(path.with_suffix("") / "examples.npz", lambda handle: handle.write(outcome.examples))
        write_json(path, outcome.cell)

    @staticmethod
    def _translate(translator: Translator, batch: torch.Tensor, where: str) -> torch.Tensor:
        out = translator.translate(batch)
        if not isinstance(out, torch.Tensor):
            raise TranslatorOutputError(f"{where}: translate() returned {type(out).__module__}.{type(out).__name__}; it must return a torch.Tensor")
        return out.detach().to("cpu", torch.float32)

    def save_examples(self) -> None:
        """The example slices' source and real target, for the figures (``examples.npz``)."""
        index = self.example_indices()
        h = self.holdout
        arrays = {
            "source": h.source[index],
            "target": h.target[index],
            "tumor_mask": h.tumor_mask[index],
            "is_tumor": h.is_tumor[index],
            "holdout_index": index,
        }
        write_atomically(self.out / "examples.npz", lambda handle: np.savez_compressed(handle, **arrays))

    def example_indices(self) -> np.ndarray:
        """Two fixed holdout slices for figures: the largest-tumor slice and the fullest healthy slice."""
        h = self.holdout
        tumor = int(np.argmax(np.where(h.is_tumor, h.tumor_fraction, -1)))
        healthy = int(np.argmax(np.where(~h.is_tumor, h.brain_fraction, -1)))
        return np.array([tumor, healthy])

    @property
    def jobs(self) -> int:
        """Worker processes for cells; 1 runs them in this process."""
        if self.options.jobs is not None:
            return self.options.jobs
        return executors.default_jobs(self.device.type, len(self.cells()))

    @property
    def cell_threads(self) -> int:
        """torch threads each cell trains with: this process's in-process, one per worker otherwise."""
        if self.options.executor == "local" and self.jobs == 1:
            return torch.get_num_threads()
        return self.options.threads or 1

    def executor(self, board: progress.Board, jobs: int) -> executors.InProcess | executors.LocalProcesses | executors.RayTasks:
        if self.options.executor == "local" and self.jobs == 1:
            return executors.InProcess(self, board)
        spec = executors.WorkerSpec(self.bench, replace(self.options, out=self.out), self.judge_weights, self.cell_threads)
        if self.options.executor == "ray":
            return executors.RayTasks(spec, self.options.address, board, gpu=self.device.type == "cuda")
        return executors.LocalProcesses(spec, jobs, board)

    # ---- the whole run --------------------------------------------------------------------

    def execute(self) -> dict[str, Any]:
        started = datetime.now(timezone.utc)
        wall = time.perf_counter()
        self.prepare()
        classifier = self.resolve_judge()
        self.judge_weights = Path(classifier["file"]).read_bytes()
        self.attach_judge(torch.load(io.BytesIO(self.judge_weights), map_location="cpu", weights_only=True))
        self.save_examples()

        todo: list[CellJob] = []
        done: dict[tuple[str, int, float], dict] = {}
        skipped = 0
        overall = progress.Cells([method.name for method, _, _ in self.cells()], self.options.progress)
        for method, seed, ratio in self.cells():
            label = f"{method.name} r={ratio:.2f} seed={seed}"
            job = CellJob(method.name, seed, ratio, self.cell_key(method, seed, ratio, classifier["sha256"]), label)
            stored = stored_cell(self.cell_path(job), job.key)
            if stored is None:
                todo.append(job)
                continue
            done[(method.name, seed, ratio)] = stored
            skipped += 1
            overall.finished(label, method.name, reused=True)
        board = progress.Board(self.options.progress)
        executor = self.executor(board, min(self.jobs, max(len(todo), 1)))
        self.executor_name = executor.name if todo else "none (every cell reused)"
        self.executor_jobs = executor.jobs if isinstance(executor, executors.LocalProcesses) else 1
        if todo and self.options.progress:
            print(f"cells: {len(todo)} to compute ({executor.name}){f', {skipped} reused' if skipped else ''}", file=sys.stderr)
        for job, outcome in executor.run(todo):
            self.store_cell(job, outcome)
            done[(job.method, job.seed, job.ratio)] = outcome.cell
            overall.finished(job.label, job.method)

        methods = {}
        for method in self.methods:
            translator, entry = self.translators[method.name]
            cells = [done[(method.name, seed, ratio)] for seed in self.bench.seeds for ratio in self.bench.domains.target_fractions]
            methods[method.name] = {
                "plugin": method.plugin,
                "version": entry.origin.release,
                "origin": entry.origin.to_dict(),
                "paired": translator.paired,
                "params": translator.hparams,
                "steps": method.steps,
                "cells": cells,
                "per_fraction": per_fraction(cells),
                "summary": method_summary(cells),
            }
        results = {
            "schema": RESULTS_SCHEMA,
            "benchmark": {
                "name": self.bench.name,
                "file": self.bench.source_file,
                "config_hash": self.bench.hash(),
                "protocol_hash": self.bench.protocol_hash(),
                "config": self.bench.to_dict(),
            },
            "dataset": self.dataset_summary(),
            "classifier": {
                **{k: v for k, v in classifier.items() if k not in ("format", "protocol_hash", "dataset_fingerprint")},
                "quality_problems": judge.quality_problems(classifier),
                "version": self.classifier_entry.origin.release,
                "origin": self.classifier_entry.origin.to_dict(),
            },
            "methods": methods,
            "ranking": rank({name: m["summary"] for name, m in methods.items()}),
            "ranking_rule": RANKING_RULE,
            "provenance": {
                "benchbias_version": __version__,
                "seeds": list(self.bench.seeds),
                **provenance(self.device, amp=self.compute_settings()["amp"], threads=self.compute_settings()["threads"], jobs=self.executor_jobs),
                "executor": self.executor_name,
                "started": started.isoformat(timespec="seconds"),
                "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "wall_time_s": round(time.perf_counter() - wall, 1),
                "cells_run": len(todo),
                "cells_reused": skipped,
                "compute_time_s": round(sum(c["train_time_s"] + c["translate_time_s"] for c in done.values()) + (classifier["train_time_s"] if self.judge_trained else 0.0), 1),
                "compute_settings": self.compute_settings(),
            },
        }
        results = json.loads(dumps(results))  # exactly what others will read back (tuples become lists)
        check_results(results, str(self.out / "results.json"))  # and that must be valid
        write_report(self.out, results, with_results=True)
        return results

    def dataset_summary(self) -> dict[str, Any]:
        s, split = self.slices, self.split
        train_tumor = int(s.is_tumor[split.train].sum())
        return {
            "fingerprint": self.data.fingerprint,
            "cache_key": self.data.cache_key,
            "root": str(self.data.root),
            "layout": self.data.layout,
            "slices": len(s),
            "subjects": len(np.unique(s.case_id)),
            "train_subjects": len(split.train_subjects),
            "holdout_subjects": list(split.holdout_subjects),
            "train_slices": {"tumor": train_tumor, "healthy": len(split.train) - train_tumor},
            "holdout": {"size": len(split.holdout), "tumor": int(s.is_tumor[split.holdout].sum())},
            "intensity_scale": INTENSITY_SCALES[self.bench.slices.normalization],
        }
