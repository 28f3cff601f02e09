"""Resolve a benchmark's ``dataset:`` section to prepared slices: synthetic (generated into the
cache on first use) or a local folder in a registered layout (named, or detected)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from benchbias.data import synthetic, synthetic_files
from benchbias.data.errors import DataError
from benchbias.data.slice_cache import PreparedSlices, prepare_slices
from benchbias.data.slice_set import SliceSet
from benchbias.foundation.config import DatasetConfig, SliceConfig, SynthSpec, slice_options, stable_hash
from benchbias.foundation.contract import DatasetLayout
from benchbias.foundation.registry import Registry

CACHE_ENV = "BENCHBIAS_CACHE"


def cache_dir() -> Path:
    """``$BENCHBIAS_CACHE``, else ``$XDG_CACHE_HOME/benchbias``, else ``~/.cache/benchbias``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "benchbias"


@dataclass(frozen=True)
class BenchmarkData:
    slices: SliceSet
    cache_key: str  # where the prepared slices are cached on this machine
    fingerprint: str  # the same data anywhere: results, judges, leaderboards and cells depend on this
    root: Path
    layout: str
    skipped: tuple[tuple[str, str], ...] = ()  # (case id, reason) of cases left out by `data prepare --skip-bad`
    generated: bool = False  # benchbias generated the data from a recipe (the synthetic data set)
    dataset_max: dict[str, float] | None = None  # each modality's maximum over the data set (normalization dataset_max)
    # Cases whose kept half (slices.half) is not the upper half of the file's first axis as stored;
    # None: not checked (slices prepared before benchbias checked it).
    half_not_as_stored: tuple[str, ...] | None = ()

    @property
    def identity(self) -> str:
        """What cells depend on: these very prepared slices. Generated data is its recipe (the
        fingerprint), wherever this machine keeps it; files of a data folder are identified by their
        paths, sizes and mtimes (the cache key), so data changed in place is noticed."""
        return self.fingerprint if self.generated else self.cache_key


def ensure_synthetic(spec: SynthSpec, cache: Path, progress: bool = True) -> Path:
    """The synthetic data set for ``spec``, generated on first use."""
    root = cache / "synthetic" / stable_hash({"version": synthetic.GENERATOR_VERSION, **asdict(spec)})[:16]
    if not complete_synthetic(root, spec):
        if root.exists():
            print(f"benchbias: warning: the generated data set {root} is incomplete; generating it again", file=sys.stderr)
        synthetic_files.write_dataset(root, spec, progress=progress)
    return root


def complete_synthetic(root: Path, spec: SynthSpec) -> bool:
    """Whether ``root`` holds the whole data set of ``spec``: its metadata file, written last, reads back."""
    try:
        meta = json.loads((root / synthetic_files.METADATA_FILE).read_text())
        return meta["spec"] == json.loads(json.dumps(asdict(spec))) and meta["generator_version"] == synthetic.GENERATOR_VERSION
    except (OSError, ValueError, KeyError, TypeError):
        return False


def detect_layout(root: Path, registry: Registry) -> DatasetLayout:
    """The one registered layout whose ``matches(root)`` holds; none or several is an error."""
    matching = [entry.cls for entry in registry.entries["dataset"].values() if entry.cls.matches(root)]
    if not matching:
        known = ", ".join(registry.names("dataset"))
        raise DataError(f"{root}: matches no known data layout (known: {known}); name one with dataset.layout in the benchmark file (or data prepare --layout)")
    if len(matching) > 1:
        names = ", ".join(sorted(cls.name for cls in matching))
        raise DataError(f"{root}: matches several data layouts ({names}); name one with dataset.layout in the benchmark file (or data prepare --layout)")
    return matching[0]()


def data_root(raw: str) -> Path:
    """A data folder given in a benchmark or on the command line (``~`` and ``$VARS`` expanded)."""
    expanded = os.path.expandvars(os.path.expanduser(raw))
    if "$" in expanded:
        raise DataError(f"dataset.path: {raw} names an environment variable that is not set")
    root = Path(expanded)
    if not root.exists():
        raise DataError(f"{root}: data folder does not exist")
    if not root.is_dir():
        raise DataError(f"{root}: is not a folder")
    return root


def resolve_data(
    dataset: DatasetConfig,
    registry: Registry,
    data_path: str | None = None,
    layout: str | None = None,
    progress: bool = True,
    cache: Path | None = None,
) -> tuple[Path, DatasetLayout]:
    """The data folder and layout of a benchmark's ``dataset:`` (``data_path``/``layout`` override it)."""
    if dataset.synthetic is not None and data_path is None:
        root = ensure_synthetic(dataset.synthetic, cache or cache_dir(), progress)
        return root, registry.get("dataset", layout or "brats2018").cls()
    root = data_root(data_path or dataset.path)
    name = layout or dataset.layout
    return root, (registry.get("dataset", name).cls() if name else detect_layout(root, registry))


def benchmark_data(dataset: DatasetConfig, options: SliceConfig, registry: Registry, data_path: str | None = None, progress: bool = True) -> BenchmarkData:
    """A benchmark's data as prepared slices. ``data_path`` overrides ``dataset.path``. A cache
    prepared by ``benchbias data prepare`` (or an earlier run) with the same files and options is reused."""
    root, layout = resolve_data(dataset, registry, data_path, progress=progress)
    generated = dataset.synthetic is not None and data_path is None
    try:
        prepared: PreparedSlices = prepare_slices(root, layout, dataset.source, dataset.target, options, cache_dir() / "slices", progress)
    except DataError as exc:
        if not generated:
            raise
        # benchbias wrote these files from a known recipe: a damaged one is regenerated, not fatal.
        reason = str(exc).split("; to leave unusable cases out")[0]
        print(f"benchbias: warning: the generated data set {root} is damaged ({reason}); generating it again", file=sys.stderr)
        shutil.rmtree(root)
        root, layout = resolve_data(dataset, registry, data_path, progress=progress)
        prepared = prepare_slices(root, layout, dataset.source, dataset.target, options, cache_dir() / "slices", progress)
    if prepared.skipped:
        shown = "; ".join(f"{case}" for case, _ in prepared.skipped[:10]) + ("; ..." if len(prepared.skipped) > 10 else "")
        print(f"benchbias: note: {len(prepared.skipped)} case(s) were skipped when these slices were prepared: {shown}", file=sys.stderr)
    fingerprint = prepared.fingerprint
    if generated:
        # Generated by benchbias itself: the recipe is the fingerprint (file sizes of compressed NIfTI
        # could differ in the last bit of a float between machines).
        fingerprint = stable_hash(
            {
                "synthetic": asdict(dataset.synthetic),
                "generator": synthetic.GENERATOR_VERSION,
                "layout": layout.name,
                "source": dataset.source,
                "target": dataset.target,
                "options": slice_options(options),
            }
        )
    return BenchmarkData(
        slices=prepared.slices,
        cache_key=prepared.cache_key,
        fingerprint=fingerprint,
        root=root,
        layout=layout.name,
        skipped=prepared.skipped,
        generated=generated,
        dataset_max=prepared.meta.get("dataset_max"),
        half_not_as_stored=tuple(prepared.meta["half_not_as_stored"]) if "half_not_as_stored" in prepared.meta else None,
    )
