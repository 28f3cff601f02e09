"""Resolve a benchmark's ``dataset:`` section to prepared slices: synthetic (generated into the
cache on first use) or a local folder in a registered layout (named, or detected)."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

from benchbias.config import DatasetConfig, SliceConfig, stable_hash
from benchbias.contract import DatasetLayout
from benchbias.data import synthetic
from benchbias.data.slices import DataError, SliceSet, prepare_slices
from benchbias.plugins import Registry

CACHE_ENV = "BENCHBIAS_CACHE"


def cache_dir() -> Path:
    """``$BENCHBIAS_CACHE``, else ``$XDG_CACHE_HOME/benchbias``, else ``~/.cache/benchbias``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "benchbias"


@dataclass(frozen=True)
class PreparedData:
    slices: SliceSet
    fingerprint: str
    root: Path
    layout: str


def ensure_synthetic(spec: synthetic.SynthSpec, cache: Path, progress: bool = True) -> Path:
    """The synthetic data set for ``spec``, generated on first use."""
    root = cache / "synthetic" / stable_hash({"version": synthetic.GENERATOR_VERSION, **asdict(spec)})[:16]
    if not (root / "synthetic.json").is_file():  # written last: its presence means complete
        synthetic.write_dataset(root, spec, progress=progress)
    return root


def detect_layout(root: Path, registry: Registry) -> DatasetLayout:
    matching = [entry.cls for entry in registry.entries["dataset"].values() if entry.cls.matches(root)]
    if not matching:
        known = ", ".join(registry.names("dataset"))
        raise DataError(f"{root}: matches no known data layout (known: {known}); name one with dataset.layout")
    return matching[0]()


def prepare_dataset(
    dataset: DatasetConfig, options: SliceConfig, registry: Registry, data_path: str | None = None, progress: bool = True
) -> PreparedData:
    """Prepared slices for the benchmark's data. ``data_path`` overrides ``dataset.path``."""
    cache = cache_dir()
    if dataset.synthetic is not None and data_path is None:
        s = dataset.synthetic
        root = ensure_synthetic(synthetic.SynthSpec(subjects=s.subjects, seed=s.seed, shape=tuple(s.shape)), cache, progress)
        layout = registry.get("dataset", "brats2018").cls()
    else:
        raw = data_path or dataset.path
        expanded = os.path.expandvars(os.path.expanduser(raw))
        if "$" in expanded:
            raise DataError(f"dataset.path: {raw} names an environment variable that is not set")
        root = Path(expanded)
        if not root.is_dir():
            raise DataError(f"{root}: data folder does not exist")
        layout = registry.get("dataset", dataset.layout).cls() if dataset.layout else detect_layout(root, registry)
    slices, fingerprint = prepare_slices(root, layout, dataset.source, dataset.target, options, cache / "slices", progress)
    return PreparedData(slices=slices, fingerprint=fingerprint, root=root, layout=layout.name)
