"""What the cells of a run take, built in three steps, each a frozen object the next one takes:

1. :func:`plugins_of`: the benchmark's plugins, instantiated with validated parameters, before any
   data is read (:class:`RunPlugins`);
2. :func:`read_data`: the prepared slices, the subject split and the holdout as the translators and
   the metrics see it (:class:`RunData`); the judges are resolved (pinned, cached or trained) on it;
3. :meth:`RunInputs.with_judges`: the judges' weights loaded and their reading of the real holdout
   targets (:class:`RunInputs`), what every cell and every worker process takes.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from benchbias.data.protocol import Split, check_capacity, split_subjects
from benchbias.data.slice_set import SliceSet
from benchbias.data.sources import BenchmarkData, benchmark_data, cache_dir
from benchbias.foundation.config import Benchmark, ConfigError, ModelConfig
from benchbias.foundation.contract import Metric, TrainContext, Translator
from benchbias.foundation.registry import PluginError, Registered, Registry, foreign_plugin_dirs
from benchbias.foundation.scoretable import ScoreTable
from benchbias.judges import panel
from benchbias.judges.panel import Judge
from benchbias.nets.scale import to_network, to_unit, unit_images
from benchbias.run import progress
from benchbias.run.keys import protocol_key
from benchbias.run.options import RunOptions, instantiate
from benchbias.scoring.metrics import BUILTIN_METRICS, score_table

EXTRA_EVIDENCE = {"second_p_tumor": "second_judge", "segmented": "segmenter"}  # Evidence a judge other than the classifier gives


@dataclass(frozen=True)
class RunPlugins:
    """A benchmark's plugins for one run, checked before any work starts: the methods asked for and
    their translators, the judges, and the metrics every cell is scored with (benchbias's own whose
    judges the benchmark has, then every installed metric plugin's) with their score table."""

    methods: tuple[ModelConfig, ...]
    translators: Mapping[str, tuple[Translator, Registered]]
    classifier_entry: Registered
    judges: Mapping[str, Judge]
    metrics: tuple[Metric, ...]
    metric_code: Mapping[str, str]  # every installed metric plugin's code identity
    score_table: ScoreTable

    @property
    def any_unpaired(self) -> bool:
        return any(not t.paired for t, _ in self.translators.values())


def plugins_of(bench: Benchmark, registry: Registry, methods: tuple[str, ...] = ()) -> RunPlugins:
    """The plugins of ``bench`` (its ``methods``, default all) with validated parameters."""
    wanted = set(methods) or {m.name for m in bench.methods if m.name not in bench.optional_methods}
    unknown = wanted - {m.name for m in bench.methods}
    if unknown:
        raise ConfigError(f"--methods: {', '.join(sorted(unknown))} not in {bench.source_file} (has: {', '.join(m.name for m in bench.methods)})")
    chosen = tuple(m for m in bench.methods if m.name in wanted)
    translators = {m.name: instantiate(registry, "translator", m, f"methods.{m.name}", bench.source_file) for m in chosen}
    classifier, entry = instantiate(registry, "classifier", bench.classifier, "classifier", bench.source_file)
    judges = panel.judges_of(bench, classifier, entry, lambda config, where: instantiate(registry, "classifier", config, where, bench.source_file))

    def has(evidence: str) -> bool:
        return EXTRA_EVIDENCE.get(evidence, "classifier") in judges

    plugins = [registry.get("metric", name) for name in registry.names("metric")]
    metrics: list[Metric] = [m() for m in BUILTIN_METRICS if all(has(need) for need in m.needs)]
    for plugin in plugins:
        if all(has(need) for need in plugin.cls.needs):
            metric = plugin.cls()
            metric.scores = tuple(replace(score, origin=plugin.origin.release) for score in metric.scores)  # who declared it, on every table
            metrics.append(metric)
    try:
        table = score_table(metrics)
    except ValueError as exc:
        raise PluginError(f"metric plugins: {exc}") from None
    return RunPlugins(chosen, translators, entry, judges, tuple(metrics), {p.name: p.code_sha256 for p in plugins}, table)


@dataclass(frozen=True)
class RunData:
    """A run's data, read once: the prepared slices, the subject split, and the holdout slices as the
    translators see them (``holdout_source``, on the network range) and as the metrics and judges
    read them (``holdout_target`` and ``holdout_mask``, on [0, 1])."""

    data: BenchmarkData
    split: Split
    holdout: SliceSet
    holdout_source: torch.Tensor
    holdout_target: torch.Tensor
    holdout_mask: torch.Tensor
    protocol_key: str  # what every cell depends on: this data and the protocol sampling it

    @property
    def slices(self) -> SliceSet:
        return self.data.slices


def read_data(bench: Benchmark, plugins: RunPlugins, registry: Registry, data_path: str | None = None, show_progress: bool = True) -> RunData:
    """The prepared slices of the benchmark's data set (``data_path`` overrides ``dataset.path``),
    split by subject, checked to hold what the protocol draws."""
    data = benchmark_data(bench.dataset, bench.slices, registry, data_path, show_progress)
    split = split_subjects(data.slices, bench.split, bench.domains)
    check_capacity(split.train, data.slices.is_tumor, bench.domains, unpaired=plugins.any_unpaired)
    holdout = data.slices.take(split.holdout)
    m = bench.slices.network_max
    return RunData(
        data=data,
        split=split,
        holdout=holdout,
        holdout_source=to_network(unit_images(holdout.source), m),
        # On the float16 grid the translations are stored and scored on, so an exact copy scores 0.
        holdout_target=to_unit(to_network(unit_images(holdout.target), m), m, clamp=True).half().float(),
        holdout_mask=torch.from_numpy(holdout.tumor_mask)[:, None],
        protocol_key=protocol_key(bench, data),
    )


def train_context(
    seed: int, steps: int, workdir: Path, label: str, device: torch.device, amp: bool, show_progress: bool
) -> tuple[TrainContext, progress.Steps]:
    """A training job's context, with a progress bar of its steps."""
    bar = progress.Steps(label, steps, show_progress)

    def on_step(step: int, losses: dict[str, float] | None) -> None:
        bar.update(losses)

    workdir.mkdir(parents=True, exist_ok=True)
    return TrainContext(seed=seed, device=device, steps=steps, workdir=workdir, amp=amp, on_step=on_step), bar


def train_judge(
    bench: Benchmark, plugins: RunPlugins, data: RunData, role: str, workdir: Path, device: torch.device, amp: bool, show_progress: bool = True
) -> tuple[bytes, dict[str, Any]]:
    """Train one judge (in ``workdir``); return its weights file's bytes and its record."""
    j = plugins.judges[role]

    def context(seed: int, steps: int, label: str) -> tuple[TrainContext, progress.Steps]:
        return train_context(seed, steps, workdir, label, device, amp, show_progress)

    blob, info = panel.train(j, bench, data.slices, data.split, data.holdout, context)
    return blob, panel.record(j, bench, data.data.fingerprint, info)


def resolve_judges(
    bench: Benchmark, plugins: RunPlugins, data: RunData, workdir: Path, device: torch.device, amp: bool, show_progress: bool = True
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Each judge's record: its pinned weights (``judges/<benchmark>[-role].pt`` beside the YAML
    file), else the ones cached for this protocol and data, else trained into the cache; and the
    roles of the judges trained now."""
    records, trained = {}, []
    for role, j in plugins.judges.items():
        records[role], now = panel.resolve(
            j, bench, data.data.fingerprint, cache_dir(), lambda role=role: train_judge(bench, plugins, data, role, workdir, device, amp, show_progress)
        )
        if now:
            trained.append(role)
    return records, trained


@dataclass(frozen=True)
class RunInputs:
    """Everything the cells of a run take, fixed before the first one: the benchmark, its plugins, its
    data, where cells train, and the judges with their weights loaded and their reading of the real
    holdout targets (``real_read``, by role). Worker processes build their own from the same parts
    and the judges' weights as bytes (:meth:`with_judges`)."""

    bench: Benchmark
    plugins: RunPlugins
    data: RunData
    device: torch.device
    amp: bool
    judge_weights: Mapping[str, bytes]
    real_read: Mapping[str, Any]
    # benchbias run --isolate: translators train and translate in the OS sandbox (benchbias.sandbox),
    # which may read the plugin folders and must not read the hidden ones (cache, data, run folder).
    isolated: bool = False
    plugin_dirs: tuple[Path, ...] = ()
    hidden: tuple[Path, ...] = ()

    @property
    def network_max(self) -> float:
        return self.bench.slices.network_max

    @classmethod
    def with_judges(cls, bench: Benchmark, plugins: RunPlugins, data: RunData, device: torch.device, amp: bool, weights: Mapping[str, bytes]) -> RunInputs:
        """Load each judge's weights (checked when they were resolved) and read the real holdout
        targets with it."""
        real_read = {}
        for role, blob in weights.items():
            j = plugins.judges[role]
            j.model.device = torch.device("cpu")  # first: a plugin may rebuild its network on .device when loading
            j.model.load_state_dict(torch.load(io.BytesIO(blob), map_location="cpu", weights_only=True))
            real_read[role] = j.read(data.holdout_target)
        return cls(bench, plugins, data, device, amp, dict(weights), real_read)

    def isolated_as(self, options: RunOptions) -> RunInputs:
        """These inputs for a run with ``options``: with ``options.isolate``, translators train in the
        OS sandbox, which may read the plugin folders and is kept from the cache, the data folder
        and the run folder. Raises when the machine cannot isolate or the device is not the CPU."""
        if not options.isolate:
            return self
        from benchbias.sandbox import bubblewrap_binary

        bubblewrap_binary()  # raises IsolationUnavailable with the reason
        if self.device.type != "cpu":
            raise ConfigError(f"--isolate: isolated translators run on the CPU (this run's device is {self.device})")
        hidden = tuple(Path(p) for p in (cache_dir(), options.out, options.data_path, self.bench.dataset.path) if p)
        return replace(self, isolated=True, plugin_dirs=foreign_plugin_dirs(options.plugin_dirs), hidden=hidden)
