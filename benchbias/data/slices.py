"""Read MRI cases through MONAI and turn them into labelled axial slices.

The same path reads real BraTS and the synthetic data: LoadImaged -> channel first -> RAS
orientation -> brain/tumor masks by the layout's rule -> per-slice fractions at full resolution ->
robust intensity scaling to [0, 1] -> in-plane resize -> axial slices kept when they hold enough brain.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Hashable, Mapping, Sequence

import numpy as np
from monai.config import KeysCollection
from monai.transforms import (
    Compose,
    LoadImaged,
    MapTransform,
    Orientationd,
    Resized,
    ScaleIntensityRangePercentilesd,
)
from tqdm.auto import tqdm

from benchbias.config import SliceConfig, stable_hash
from benchbias.contract import Case, DatasetLayout

SLICE_CACHE_VERSION = 1


class DataError(ValueError):
    """A data set, case or file is unusable; the message names it."""


@dataclass
class SliceSet:
    """Axial slices, one row per slice. Images are float32 in [0, 1], shape (N, H, W)."""

    source: np.ndarray
    target: np.ndarray
    tumor_mask: np.ndarray
    brain_fraction: np.ndarray
    tumor_fraction: np.ndarray
    is_tumor: np.ndarray
    case_id: np.ndarray
    slice_index: np.ndarray

    def __len__(self) -> int:
        return len(self.is_tumor)

    def take(self, index: np.ndarray) -> "SliceSet":
        return SliceSet(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def save(self, path: Path) -> None:
        arrays = {f.name: getattr(self, f.name) for f in fields(self)}
        write_atomically(path, lambda handle: np.savez_compressed(handle, **arrays))

    @classmethod
    def load(cls, path: Path) -> "SliceSet":
        with np.load(path, allow_pickle=False) as data:
            return cls(**{f.name: data[f.name] for f in fields(cls)})


def write_atomically(path: Path, write) -> None:
    """Call ``write(binary_handle)`` on a temporary file next to ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class LayoutMasksd(MapTransform):
    """Adds boolean ``brain`` and ``tumor`` volumes (channel first) using the layout's label rules."""

    def __init__(self, layout: DatasetLayout, image_keys: KeysCollection, label_key: str = "label") -> None:
        super().__init__(image_keys)
        self.layout = layout
        self.label_key = label_key

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        label = np.asarray(d[self.label_key])
        images = {key: np.asarray(d[key]) for key in self.keys}
        shapes = {key: value.shape[1:] for key, value in [*images.items(), (self.label_key, label)]}
        if len(set(shapes.values())) != 1:
            raise DataError("modalities have different shapes (" + ", ".join(f"{k} {v}" for k, v in shapes.items()) + ")")
        d["brain"] = self.layout.brain_mask(label, images).astype(np.float32)
        d["tumor"] = (self.layout.tumor_mask(label) & (d["brain"] > 0)).astype(np.float32)
        return d


class AxialFractionsd(MapTransform):
    """Per axial slice: brain share of the slice and tumor share of the brain, at full resolution."""

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        brain = np.asarray(d["brain"])[0] > 0
        tumor = np.asarray(d["tumor"])[0] > 0
        brain_voxels = brain.sum(axis=(0, 1))
        d["brain_fraction"] = brain_voxels / float(brain.shape[0] * brain.shape[1])
        d["tumor_fraction"] = tumor.sum(axis=(0, 1)) / np.maximum(brain_voxels, 1)
        return d


def case_transform(layout: DatasetLayout, source: str, target: str, image_size: int) -> Compose:
    images = [source, target]
    return Compose(
        [
            LoadImaged(keys=[*images, "label"], image_only=True, ensure_channel_first=True),
            Orientationd(keys=[*images, "label"], axcodes="RAS", labels=(("L", "R"), ("P", "A"), ("I", "S"))),
            LayoutMasksd(layout, images),
            AxialFractionsd(keys=images),
            # Robust per-volume scaling: background stays 0, the 99.5th percentile maps to 1.
            ScaleIntensityRangePercentilesd(keys=images, lower=0, upper=99.5, b_min=0.0, b_max=1.0, clip=True),
            Resized(keys=images, spatial_size=(image_size, image_size, -1), mode="area"),
            Resized(keys=["tumor"], spatial_size=(image_size, image_size, -1), mode="nearest"),
        ]
    )


def load_case_slices(case: Case, layout: DatasetLayout, source: str, target: str, options: SliceConfig) -> SliceSet:
    """All kept axial slices of one case."""
    item = {source: case.images[source], target: case.images[target], "label": case.label}
    try:
        d = case_transform(layout, source, target, options.image_size)(item)
    except Exception as exc:  # MONAI wraps transform errors; report the root cause with the case
        cause = exc
        while cause.__cause__ is not None:
            cause = cause.__cause__
        if isinstance(cause, DataError):
            raise DataError(f"case {case.case_id}: {cause}") from exc
        raise DataError(f"case {case.case_id}: cannot read ({type(cause).__name__}: {str(cause).splitlines()[0][:200]})") from exc
    brain_fraction, tumor_fraction = np.asarray(d["brain_fraction"]), np.asarray(d["tumor_fraction"])
    keep = brain_fraction > options.min_brain_fraction
    is_tumor = tumor_fraction > options.min_tumor_fraction
    if options.drop_ambiguous:
        keep &= is_tumor | (tumor_fraction == 0)
    z = np.flatnonzero(keep)

    def axial(key: str) -> np.ndarray:
        volume = np.asarray(d[key])[0]  # (H, W, Z)
        return np.moveaxis(volume[..., z], -1, 0)

    return SliceSet(
        source=axial(source).astype(np.float32),
        target=axial(target).astype(np.float32),
        tumor_mask=axial("tumor") > 0.5,
        brain_fraction=brain_fraction[z].astype(np.float32),
        tumor_fraction=tumor_fraction[z].astype(np.float32),
        is_tumor=is_tumor[z],
        case_id=np.array([case.case_id] * len(z)),
        slice_index=z.astype(np.int32),
    )


def concatenate(parts: Sequence[SliceSet]) -> SliceSet:
    return SliceSet(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(SliceSet)})


def fingerprint(cases: Sequence[Case], layout: DatasetLayout, source: str, target: str, options: SliceConfig) -> str:
    """Identifies the prepared slices: every file's path, size and mtime, plus all options."""
    files = []
    for case in cases:
        for entry in (case.images[source], case.images[target], case.label):
            path = Path(entry[0] if isinstance(entry, tuple) else entry)
            stat = path.stat()
            files.append([str(path.resolve()), stat.st_size, stat.st_mtime_ns])
    return stable_hash(
        {"version": SLICE_CACHE_VERSION, "layout": layout.name, "source": source, "target": target, "options": options.__dict__, "files": files}
    )


def prepare_slices(
    root: Path,
    layout: DatasetLayout,
    source: str,
    target: str,
    options: SliceConfig,
    cache_dir: Path | None = None,
    progress: bool = True,
) -> tuple[SliceSet, str]:
    """Every kept slice of every case under ``root``, reusing a matching cache; also the fingerprint."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: data folder does not exist")
    cases = layout.cases(root, (source, target))
    if not cases:
        raise DataError(f"{root}: no cases found for layout '{layout.name}'")
    key = fingerprint(cases, layout, source, target, options)
    cached = cache_dir / f"slices-{key[:16]}.npz" if cache_dir else None
    if cached is not None and cached.is_file():
        return SliceSet.load(cached), key
    parts = [load_case_slices(case, layout, source, target, options) for case in tqdm(cases, desc="reading cases", unit="case", leave=False, disable=not progress)]
    slices = concatenate(parts)
    if cached is not None:
        slices.save(cached)
    return slices, key
