"""Run a benchmark: prepare data, load (or train once) the pinned judge, then every (method, fraction,
seed) cell.

Each cell is an independent unit of work, stored in ``cells/<method>/`` as soon as it finishes and
skipped on a rerun when its fingerprint matches; ``results.json`` is assembled from the cells.
"""
from __future__ import annotations

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

from benchbias import __version__, executors, judge, judging, paper_claims, progress
from benchbias.code_identity import module_sha256, modules_sha256
from benchbias.config import Benchmark, ConfigError, ModelConfig, stable_hash
from benchbias.contract import Evidence, Metric, PairedSlices, ParamError, TrainContext, Translator, UnpairedDomains
from benchbias.data.slice_set import SliceSet
from benchbias.data.sources import PreparedData, cache_dir, prepare_dataset
from benchbias.errors import BenchbiasError
from benchbias.executors import CellJob
from benchbias.jsonio import dumps, read_json, write_atomically, write_json
from benchbias.judging import unit_images
from benchbias.metrics import ScoreTable
from benchbias.plugins import PluginError, Registry
from benchbias.protocol import Split, check_capacity, paired_domains, split_subjects, unpaired_domains
from benchbias.report import write_report
from benchbias.results import provenance
from benchbias.schemas import RESULTS_SCHEMA
from benchbias.scores import BUILTIN_METRICS, score_cell, score_table
from benchbias.summary import RANKING_RULE, method_summary, per_fraction, rank
from benchbias.validation import cell_problem, check_results

TRANSLATE_BATCH = 64
CELL_FORMAT = 4  # bump when what a cell trains or translates changes, so stored cells are recomputed
SCORING_FORMAT = 2  # bump when what scoring a cell's translations records changes, so they are rescored
# The shared training core every baseline builds on, by logical name: a change to what it computes
# recomputes their cells. (What the runner itself computes per cell is versioned by CELL_FORMAT.)
CORE_MODULES = {
    "contract": "benchbias.contract",
    "protocol": "benchbias.protocol",
    "translation": "benchbias.translation",
    "networks": "benchbias.networks",
    "losses": "benchbias.losses",
    "image_pool": "benchbias.image_pool",
}
# The metrics' code, whose change rescores stored translations.
SCORING_MODULE = "benchbias.scores"


def core_code_sha256() -> str:
    return modules_sha256(CORE_MODULES)


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
    cells_per_gpu: int = 1  # on CUDA, cells sharing one GPU at once (local workers, or fractional Ray GPUs)


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


TRANSLATIONS = "translations.npz"  # every holdout translation of a cell (float16), written when it is computed
JUDGED = "judged.npz"  # the judges' reading of them, written when they are scored
FILE_ARRAYS = {TRANSLATIONS: {"translated", "out_of_range"}, JUDGED: {"p_tumor", "example_index", "example_translated"}}


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
    if problem is None and cell.get("fingerprint") != key:
        return None  # stale: the protocol, plugin or compute settings changed
    if problem is None:
        problem = npz_problem(path.with_suffix("") / TRANSLATIONS)
    if problem is not None:
        warn(f"{path}: {problem}; computing this cell again")
        return None
    return cell


def npz_problem(path: Path) -> str | None:
    """Why a cell's ``translations.npz`` or ``judged.npz`` cannot be used, or None when it can."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = FILE_ARRAYS[path.name] - set(data.files)
            if missing:
                return f"{path.name} lacks {', '.join(sorted(missing))}"
            for name in data.files:
                data[name]  # decompress every array: a truncated member fails here
    except FileNotFoundError:
        return f"{path.name} is missing"
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        return f"{path.name} cannot be read ({type(exc).__name__})"
    return None


def npz_bytes(**arrays: np.ndarray) -> bytes:
    handle = io.BytesIO()
    np.savez_compressed(handle, **arrays)
    return handle.getvalue()


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
        self.judges = judging.judges_of(
            bench, self.classifier, self.classifier_entry, lambda config, where: instantiate(registry, "classifier", config, where, bench.source_file)
        )
        self.judges_trained: list[str] = []
        self.network_max = bench.slices.network_max
        # The metrics every cell is scored with: benchbias's own (those whose judges the benchmark
        # has), then every installed metric plugin's.
        plugins = [registry.get("metric", name) for name in registry.names("metric")]
        self.metrics: list[Metric] = [m() for m in BUILTIN_METRICS if all(self._has(need) for need in m.needs)]
        for entry in plugins:
            if all(self._has(need) for need in entry.cls.needs):
                metric = entry.cls()
                metric.scores = tuple(replace(score, origin=entry.origin.release) for score in metric.scores)  # who declared it, on every table
                self.metrics.append(metric)
        self.metric_code = {entry.name: entry.code_sha256 for entry in plugins}
        try:
            self.score_table: ScoreTable = score_table(self.metrics)
        except ValueError as exc:
            raise PluginError(f"metric plugins: {exc}") from None

    def _has(self, evidence: str) -> bool:
        """Whether this run's Evidence has ``evidence`` (the extra judges' outputs need those judges)."""
        role = {"second_p_tumor": "second_judge", "segmented": "segmenter"}.get(evidence)
        return role is None or role in self.judges

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
                "data": self.data.identity,  # these very prepared slices
                "dataset": asdict(self.bench.dataset),
                "slices": self.bench.to_dict()["slices"],  # options added later enter only when set
                "split": asdict(self.bench.split),
                "domains": {k: v for k, v in asdict(self.bench.domains).items() if k != "target_fractions"},
            }
        )
        holdout = self.slices.take(self.split.holdout)
        self.holdout = holdout
        self.holdout_source = to_network(holdout.source, self.network_max)
        # On the float16 grid the translations are stored and scored on, so an exact copy scores 0.
        self.holdout_target = from_network(to_network(holdout.target, self.network_max), self.network_max).half().float()
        self.holdout_mask = torch.from_numpy(holdout.tumor_mask)[:, None]

    def _context(self, seed: int, steps: int, workdir: Path, label: str) -> tuple[TrainContext, progress.Steps]:
        bar = progress.Steps(label, steps, self.options.progress)

        def on_step(step: int, losses: dict[str, float] | None) -> None:
            bar.update(losses)

        workdir.mkdir(parents=True, exist_ok=True)
        return TrainContext(seed=seed, device=self.device, steps=steps, workdir=workdir, amp=self.options.amp, on_step=on_step), bar

    def resolve_judges(self) -> dict[str, dict[str, Any]]:
        """Each judge's record: its pinned weights (``judges/<benchmark>[-role].pt`` beside the YAML
        file), else the ones cached for this protocol and data, else trained into the cache."""
        records = {}
        for role, j in self.judges.items():
            records[role], trained = judging.resolve(j, self.bench, self.data.fingerprint, cache_dir(), lambda j=j: self.train_judge(j.role))
            if trained:
                self.judges_trained.append(role)
        return records

    def train_judge(self, role: str = "classifier") -> tuple[bytes, dict[str, Any]]:
        """Train one judge (after :meth:`prepare`); return its weights file's bytes and its record."""
        j = self.judges[role]
        blob, info = judging.train(j, self.bench, self.slices, self.split, self.holdout, lambda seed, steps, label: self._context(seed, steps, self.out / "judge", label))
        return blob, judging.record(j, self.bench, self.data.fingerprint, info)

    def cells(self) -> list[tuple[ModelConfig, int, float]]:
        """Every (method, seed, fraction), methods interleaved: each method's cost per cell is known
        after the first few cells (a sound ETA), and an interrupted run has some of every method."""
        return [(m, seed, ratio) for seed in self.bench.seeds for ratio in self.bench.domains.target_fractions for m in self.methods]

    def programs_for(self, todo: list[CellJob]) -> list[executors.Program]:
        """The programs that compute the cells ``todo``: each cell alone, or with the other fractions
        its model trains with (all of them, so that a resumed run trains the very program a fresh run
        would; cells already stored are not replaced)."""
        jobs = {(job.method, job.seed, job.ratio): job for job in todo}
        methods = {m.name: m for m in self.methods}
        programs, planned = [], set()
        for job in todo:
            if (job.method, job.seed, job.ratio) in planned:
                continue
            method = methods[job.method]
            together = self.program_of(method, job.ratio)
            members = []
            for ratio in together:
                member = jobs.get((job.method, job.seed, ratio)) or CellJob(
                    job.method, job.seed, ratio, self.cell_key(method, job.seed, ratio), f"{job.method} r={ratio:.2f} seed={job.seed}", job.scoring_key
                )
                members.append(member)
                planned.add((job.method, job.seed, ratio))
            programs.append(executors.Program(tuple(members)))
        return programs

    def cell_path(self, job: CellJob) -> Path:
        return self.out / "cells" / job.method / f"r{job.ratio:.3f}-s{job.seed}.json"

    def cell_key(self, method: ModelConfig, seed: int, ratio: float) -> str:
        """What a cell's translations depend on: a change to any of it recomputes the cell on a rerun."""
        translator, entry = self.translators[method.name]
        return stable_hash(
            {
                "format": CELL_FORMAT,
                "protocol": self.protocol_key,
                "plugin": method.plugin,
                "code": entry.code_sha256,
                "core": core_code_sha256(),
                "params": translator.hparams,
                "steps": method.steps,
                "seed": seed,
                "ratio": ratio,
                "compute": self.compute_settings(),
                # Models trained together end in other float roundings than alone (or in another group).
                **({"trained_with": list(together)} if len(together := self.program_of(method, ratio)) > 1 else {}),
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

    def scoring_key(self, judge_sha256: dict[str, str]) -> str:
        """What a cell's scores depend on beyond its translations: the judges and the metrics' code. A
        change to it rescores stored translations on a rerun, without training again."""
        core = module_sha256(SCORING_MODULE)
        return stable_hash({"format": SCORING_FORMAT, "judges": judge_sha256, "scores": core, "plugins": self.metric_code, "network_max": self.network_max})

    def attach_judges(self, weights: dict[str, bytes]) -> None:
        """Load each judge's weights (already checked by :meth:`resolve_judges`) and read the real
        holdout targets with it: in a worker process, from the bytes the runner sends."""
        self.real_read = {}
        for role, blob in weights.items():
            j = self.judges[role]
            j.model.device = torch.device("cpu")  # first: a plugin may rebuild its network on .device when loading
            j.model.load_state_dict(torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True))
            self.real_read[role] = j.read(self.holdout_target)

    def programs(self, method: ModelConfig) -> list[tuple[float, ...]]:
        """The target fractions of ``method`` whose models train as one program: consecutive chunks of
        ``training.models_per_program`` when the translator trains models together, else one each."""
        translator, _ = self.translators[method.name]
        size = self.bench.models_per_program if getattr(translator, "trains_together", False) else 1
        fractions = self.bench.domains.target_fractions
        return [tuple(fractions[i : i + size]) for i in range(0, len(fractions), size)]

    def program_of(self, method: ModelConfig, ratio: float) -> tuple[float, ...]:
        return next(chunk for chunk in self.programs(method) if ratio in chunk)

    def compute_program(self, program: executors.Program, report: executors.Report | None, workdirs: list[Path]) -> list[executors.CellOutcome]:
        """Train the models of ``program`` (one cell's, or several fractions' trained together), then
        translate the holdout with each and score the translations (after :meth:`prepare` and
        :meth:`attach_judges`); ``report(label, done, steps, losses)`` sees the steps. ``workdirs``:
        each cell's working folder."""
        method = next(m for m in self.methods if m.name == program.method)
        seed = program.seed
        template, entry = self.translators[method.name]
        translator: Translator = type(template)(**template.hparams)
        domains, data, contexts = [], [], []
        for i, (job, workdir) in enumerate(zip(program.jobs, workdirs)):
            d = (paired_domains if translator.paired else unpaired_domains)(self.split.train, self.slices.is_tumor, self.bench.domains, job.ratio, seed)
            m = self.network_max
            source, target = to_network(self.slices.source[d.source], m), to_network(self.slices.target[d.target], m)
            domains.append(d)
            data.append(PairedSlices(source, target) if translator.paired else UnpairedDomains(source, target))
            workdir.mkdir(parents=True, exist_ok=True)

            def on_step(step: int, losses: dict[str, float] | None, first: bool = i == 0) -> None:
                if report is not None and first:  # one progress line per program
                    report(program.label, step + 1, method.steps, losses)

            contexts.append(TrainContext(seed=seed, device=self.device, steps=method.steps, workdir=workdir, amp=self.options.amp, on_step=on_step))
        # Common random numbers: within a seed every target fraction starts from the same initial
        # weights and batch stream, so differences across fractions come from the target domain's
        # composition rather than from initialisation noise. Seeds are independent replicates.
        torch.manual_seed(seed)
        start = time.perf_counter()
        if len(program.jobs) == 1:
            translator.fit(data[0], contexts[0])
            models = [translator]
        else:
            models = translator.fit_together(data, contexts)
        train_seconds = (time.perf_counter() - start) / len(models)  # each model's share of the program
        return [self._translate_and_score(job, method, model, d, train_seconds, len(models)) for job, model, d in zip(program.jobs, models, domains)]

    def _translate_and_score(self, job: CellJob, method: ModelConfig, translator: Translator, domains, train_seconds: float, together: int) -> executors.CellOutcome:
        start = time.perf_counter()
        m = self.network_max
        where = f"methods.{method.name} (plugin {method.plugin}) at target fraction {job.ratio:g}, seed {job.seed}"
        raw = torch.cat([self._translate(translator, batch, where) for batch in self.holdout_source.split(TRANSLATE_BATCH)])
        if raw.shape != self.holdout_source.shape:
            raise TranslatorOutputError(f"{where}: translate() returned shape {tuple(raw.shape)} for inputs of shape {tuple(self.holdout_source.shape)}")
        if not torch.isfinite(raw).all():
            raise TranslatorOutputError(f"{where}: translate() returned NaN or infinite values (training diverged?); finished cells are kept")
        low, high = to_network(np.array([[[0.0]], [[1.0]]], np.float32), m).flatten().tolist()  # [0, 1] as the translators saw it
        out_of_range = ((raw < low) | (raw > high)).flatten(1).float().mean(1).numpy()  # recorded, then clamped
        # Stored and scored as float16, so a later rescoring of the stored translations gives the same numbers.
        translated = from_network(raw, m).half()
        translations = npz_bytes(translated=translated[:, 0].numpy(), out_of_range=out_of_range.astype(np.float32))
        translate_seconds = time.perf_counter() - start
        cell = {
            "fingerprint": job.key,
            "method": method.name,
            "ratio": job.ratio,
            "seed": job.seed,
            "target_tumor_slices": int(self.slices.is_tumor[domains.target].sum()),
            "train_time_s": round(train_seconds, 2),
            **({"trained_together": together} if together > 1 else {}),
            "translate_time_s": round(translate_seconds, 2),
        }
        scored, judged = self.score(job, translated.float(), out_of_range)
        return executors.CellOutcome({**cell, **scored}, {TRANSLATIONS: translations, JUDGED: judged})

    def score(self, job: CellJob, translated: torch.Tensor, out_of_range: np.ndarray) -> tuple[dict[str, Any], bytes]:
        """Every metric's scores of a cell's translations ``(N, 1, H, W)`` on [0, 1], with bootstrap
        intervals over holdout slices, and the judges' reading of them (``judged.npz``)."""
        start = time.perf_counter()
        read = {role: j.read(translated) for role, j in self.judges.items()}
        h = self.holdout
        evidence = Evidence(
            source=unit_images(h.source), translated=translated, real=self.holdout_target, tumor_mask=self.holdout_mask,
            source_is_tumor=h.is_tumor, brain_fraction=h.brain_fraction, out_of_range=out_of_range,
            p_tumor=read["classifier"], p_tumor_real=self.real_read["classifier"],
            second_p_tumor=read.get("second_judge"), second_p_tumor_real=self.real_read.get("second_judge"),
            segmented=read.get("segmenter"), segmented_real=self.real_read.get("segmenter"),
        )
        scores, intervals = score_cell(self.metrics, evidence, seed=job.seed)
        examples = self.example_indices()
        judged = {"p_tumor": read["classifier"].astype(np.float32), "example_index": examples, "example_translated": translated[examples, 0].half().numpy()}
        if "second_judge" in read:
            judged["second_p_tumor"] = read["second_judge"].astype(np.float32)
        if "segmenter" in read:
            judged["example_segmented"] = read["segmenter"][examples, 0].numpy()
        return {"scores": scores, "ci95": intervals, "scored_with": job.scoring_key, "score_time_s": round(time.perf_counter() - start, 2)}, npz_bytes(**judged)

    def rescore(self, job: CellJob, cell: dict[str, Any]) -> executors.CellOutcome:
        """Score a stored cell's translations again (the judges or metrics changed), without training."""
        with np.load(self.cell_path(job).with_suffix("") / TRANSLATIONS, allow_pickle=False) as data:
            translated = torch.from_numpy(data["translated"].astype(np.float32))[:, None]
            out_of_range = data["out_of_range"].astype(np.float64)
        scored, judged = self.score(job, translated, out_of_range)
        return executors.CellOutcome({**cell, **scored}, {JUDGED: judged})

    def store_cell(self, job: CellJob, outcome: executors.CellOutcome) -> None:
        """The cell's arrays first, then its JSON: a cell file on disk means a finished cell."""
        path = self.cell_path(job)
        for name, content in outcome.files.items():
            write_atomically(path.with_suffix("") / name, lambda handle, content=content: handle.write(content))
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
        if "segmenter" in self.real_read:  # the segmentation judge's outline of the real targets
            arrays["segmented"] = self.real_read["segmenter"][index, 0].numpy()
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
        return executors.default_jobs(self.device.type, len(self.cells()), self.options.cells_per_gpu)

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
            return executors.RayTasks(spec, self.options.address, board, gpus=1 / self.options.cells_per_gpu if self.device.type == "cuda" else 0)
        return executors.LocalProcesses(spec, jobs, board)

    # ---- the whole run --------------------------------------------------------------------

    def execute(self) -> dict[str, Any]:
        started = datetime.now(timezone.utc)
        wall = time.perf_counter()
        self.prepare()
        judges = self.resolve_judges()
        classifier = judges["classifier"]
        self.judge_weights = {role: Path(record["file"]).read_bytes() for role, record in judges.items()}
        self.attach_judges(self.judge_weights)
        self.save_examples()
        scoring_key = self.scoring_key({role: record["sha256"] for role, record in judges.items()})

        todo: list[CellJob] = []
        done: dict[tuple[str, int, float], dict] = {}
        skipped = rescored = 0
        overall = progress.Cells([method.name for method, _, _ in self.cells()], self.options.progress)
        for method, seed, ratio in self.cells():
            label = f"{method.name} r={ratio:.2f} seed={seed}"
            job = CellJob(method.name, seed, ratio, self.cell_key(method, seed, ratio), label, scoring_key)
            stored = stored_cell(self.cell_path(job), job.key)
            if stored is None:
                todo.append(job)
                continue
            if stored.get("scored_with") != scoring_key or npz_problem(self.cell_path(job).with_suffix("") / JUDGED) is not None:
                outcome = self.rescore(job, stored)  # the judges or metrics changed: no training needed
                self.store_cell(job, outcome)
                stored, rescored = outcome.cell, rescored + 1
            done[(method.name, seed, ratio)] = stored
            skipped += 1
            overall.finished(label, method.name, reused=True)
        board = progress.Board(self.options.progress)
        programs = self.programs_for(todo)
        executor = self.executor(board, min(self.jobs, max(len(programs), 1)))
        self.executor_name = executor.name if todo else "none (every cell reused)"
        self.executor_jobs = executor.jobs if isinstance(executor, executors.LocalProcesses) else 1
        if todo and self.options.progress:
            together = f" in {len(programs)} programs" if len(programs) < len(todo) else ""
            print(f"cells: {len(todo)} to compute{together} ({executor.name}){f', {skipped} reused' if skipped else ''}", file=sys.stderr)
        overall.workers = self.executor_jobs
        wanted = {(job.method, job.seed, job.ratio) for job in todo}
        for job, outcome in executor.run(programs):
            if (job.method, job.seed, job.ratio) not in wanted:
                continue  # trained again beside a missing cell of its program; the stored one stays
            self.store_cell(job, outcome)
            done[(job.method, job.seed, job.ratio)] = outcome.cell
            seconds = outcome.cell["train_time_s"] + outcome.cell["translate_time_s"] if self.executor_jobs > 1 else None
            overall.finished(job.label, job.method, seconds=seconds)

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
                "per_fraction": per_fraction(cells, self.score_table),
                "summary": method_summary(cells, self.score_table),
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
            **({"extra_judges": self.extra_judges_summary(judges)} if len(judges) > 1 else {}),
            "score_table": self.score_table.to_json(),
            "methods": methods,
            "ranking": rank({name: m["summary"] for name, m in methods.items()}),
            **({"ranking_2": rank({name: m["summary"] for name, m in methods.items()}, "_2")} if "second_judge" in judges else {}),
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
                "cells_rescored": rescored,
                "compute_time_s": round(
                    sum(c["train_time_s"] + c["translate_time_s"] + c.get("score_time_s", 0.0) for c in done.values())
                    + sum(judges[role]["train_time_s"] for role in self.judges_trained), 1
                ),
                "compute_settings": self.compute_settings(),
            },
        }
        claims = paper_claims.section(results)  # when the benchmark carries the paper's claims and has the three baselines
        if claims is not None:
            results["paper_claims"] = claims
        results = json.loads(dumps(results))  # exactly what others will read back (tuples become lists)
        check_results(results, str(self.out / "results.json"))  # and that must be valid
        write_report(self.out, results, with_results=True)
        return results

    def extra_judges_summary(self, judges: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """The records of the segmentation judge and the second judge, as results carry them."""
        extra = {}
        for role, record in judges.items():
            if role == "classifier":
                continue
            j = self.judges[role]
            extra[role] = {
                **{k: v for k, v in record.items() if k not in ("format", "protocol_hash", "dataset_fingerprint")},
                "quality_problems": j.quality_problems(record),
                **({"version": j.entry.origin.release, "origin": j.entry.origin.to_dict()} if j.entry is not None else {}),
            }
        return extra

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
