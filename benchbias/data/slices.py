"""Read MRI cases through MONAI and turn them into labelled axial slices, with a prepared-slice cache.

Every layout takes the same path, one case (and one volume per modality) at a time:
``LoadImaged`` (MONAI picks ITKReader for MetaImage ``.mha``, NibabelReader for NIfTI) ->
``SelectChanneld`` (one channel of a 4-D file, e.g. MSD) -> ``CheckGeometryd`` (same shape and
affine for every file of the case) -> ``Orientationd`` (RAS) -> ``KeepHalfd`` (optional: the left or
right half of the patient) -> ``LayoutMasksd`` (brain and tumor masks by the layout's label rule) ->
``AxialFractionsd`` (per-slice fractions at full resolution) -> intensity normalisation -> ``Resized``
in plane -> axial slices kept when they hold enough brain.

:func:`prepare` reads every case of a data folder once and stores the slices with a fingerprint of
the source files and options (``slices-<fingerprint>.npz`` in the cache folder); a later call with
the same files and options reuses it, and a stale cache of the same folder and options is replaced.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Hashable, Iterator, Mapping, Sequence

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

from benchbias.config import SliceConfig, slice_options, stable_hash
from benchbias.contract import Case, DatasetLayout
from benchbias.errors import BenchbiasError
from benchbias.jsonio import write_atomically

SLICE_CACHE_VERSION = 2
CHANNEL_SUFFIX = "_channel"
MAX_SUFFIX = "_max"
AFFINE_TOLERANCE = 1e-3  # mm (and direction cosines): two files of one case must agree this closely


SKIP_BAD_HINT = "; to leave unusable cases out, prepare once with: benchbias data prepare {root} --benchmark BENCHMARK --skip-bad"


class DataError(BenchbiasError, ValueError):
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

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def save(self, path: Path, **extra: np.ndarray) -> None:
        arrays = {**self.arrays(), **extra}
        write_atomically(path, lambda handle: np.savez_compressed(handle, **arrays))

    @classmethod
    def load(cls, path: Path) -> "SliceSet":
        with np.load(path, allow_pickle=False) as data:
            return cls(**{f.name: data[f.name] for f in fields(cls)})


# --------------------------------------------------------------------------------------------
# The MONAI transforms of the case pipeline
# --------------------------------------------------------------------------------------------


def source_file(value: Any) -> str:
    """The file a loaded MONAI volume came from (for error messages)."""
    meta = getattr(value, "meta", None) or {}
    return str(meta.get("filename_or_obj", "?"))


def label_rules(layout: DatasetLayout, case: Case):
    """The object whose ``tumor_mask``/``brain_mask`` apply to ``case``: ``layout.rules_for(case)``
    when the layout's cases follow different rules (BRATS2013), else the layout itself."""
    rules_for = getattr(layout, "rules_for", None)
    return rules_for(case) if callable(rules_for) else layout


class SelectChanneld(MapTransform):
    """Keep channel ``d[key + "_channel"]`` of a multi-channel (4-D) volume; without one, a volume
    must have exactly one channel."""

    def __call__(self, data: Mapping[Hashable, Any]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            image, channel = d[key], d.get(f"{key}{CHANNEL_SUFFIX}")
            channels = image.shape[0]
            if channel is None:
                if channels != 1:
                    raise DataError(f"{source_file(image)}: has {channels} channels (a 4-D file), expected a single volume")
            else:
                if not 0 <= channel < channels:
                    raise DataError(f"{source_file(image)}: has {channels} channel(s), but channel {channel} is asked for")
                d[key] = image[channel : channel + 1]
        return d


class CheckGeometryd(MapTransform):
    """Every volume of a case must have the same spatial shape and (within ``tolerance``) affine."""

    def __init__(self, keys: KeysCollection, tolerance: float = AFFINE_TOLERANCE) -> None:
        super().__init__(keys)
        self.tolerance = tolerance

    def __call__(self, data: Mapping[Hashable, Any]) -> dict:
        d = dict(data)
        keys = list(self.key_iterator(d))
        first = d[keys[0]]
        for key in keys[1:]:
            other = d[key]
            if tuple(other.shape[1:]) != tuple(first.shape[1:]):
                raise DataError(
                    f"modalities have different shapes: {source_file(other)} ({key}) is {tuple(other.shape[1:])}, "
                    f"{source_file(first)} ({keys[0]}) is {tuple(first.shape[1:])}"
                )
            a, b = getattr(first, "affine", None), getattr(other, "affine", None)
            if a is not None and b is not None:
                difference = float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())
                if difference > self.tolerance:
                    raise DataError(
                        f"modalities have different affines: {source_file(other)} ({key}) differs from "
                        f"{source_file(first)} ({keys[0]}) by up to {difference:.4g} (tolerance {self.tolerance:g})"
                    )
        return d


class KeepHalfd(MapTransform):
    """Keep the patient's ``left`` or ``right`` half of the axial plane (after RAS orientation the
    first spatial axis runs from the patient's left to right)."""

    def __init__(self, keys: KeysCollection, half: str) -> None:
        super().__init__(keys)
        if half not in ("left", "right"):
            raise ValueError(f"half must be 'left' or 'right', got {half!r}")
        self.half = half

    def __call__(self, data: Mapping[Hashable, Any]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            image = d[key]
            middle = image.shape[1] // 2
            d[key] = image[:, :middle] if self.half == "left" else image[:, middle:]
        return d


class LayoutMasksd(MapTransform):
    """Adds boolean ``brain`` and ``tumor`` volumes (channel first) using the layout's label rules."""

    def __init__(self, layout, image_keys: KeysCollection, label_key: str = "label") -> None:
        super().__init__(image_keys)
        self.layout = layout  # a DatasetLayout, or the LabelRules of one case
        self.label_key = label_key

    def __call__(self, data: Mapping[Hashable, object]) -> dict:
        d = dict(data)
        label = np.asarray(d[self.label_key])
        images = {key: np.asarray(d[key]) for key in self.keys}
        shapes = {key: value.shape[1:] for key, value in [*images.items(), (self.label_key, label)]}
        if len(set(shapes.values())) != 1:
            raise DataError("modalities have different shapes (" + ", ".join(f"{k} {v}" for k, v in shapes.items()) + ")")
        try:
            d["brain"] = self.layout.brain_mask(label, images).astype(np.float32)
            d["tumor"] = (self.layout.tumor_mask(label) & (d["brain"] > 0)).astype(np.float32)
        except DataError as exc:
            raise DataError(f"{source_file(d[self.label_key])}: {exc}") from None
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


class DivideByMaxd(MapTransform):
    """``normalization: max``: each volume divided by its own maximum, clipped to [0, 1]."""

    def __call__(self, data: Mapping[Hashable, Any]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            peak = float(d[key].max())
            if peak <= 0:
                raise DataError(f"{source_file(d[key])}: volume has no positive intensity")
            d[key] = (d[key] / peak).clamp(0.0, 1.0)
        return d


class VolumeMaxd(MapTransform):
    """``normalization: dataset_max``: record each volume's maximum (``key + "_max"``) and leave the
    intensities raw; :func:`prepare` divides every slice by the maximum over the whole data set."""

    def __call__(self, data: Mapping[Hashable, Any]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            d[f"{key}{MAX_SUFFIX}"] = float(d[key].max())
        return d


def normalisation(keys: list[str], method: str) -> MapTransform:
    if method == "percentile":
        # Robust per-volume scaling: background stays 0, the 99.5th percentile maps to 1.
        return ScaleIntensityRangePercentilesd(keys=keys, lower=0, upper=99.5, b_min=0.0, b_max=1.0, clip=True)
    if method == "max":
        return DivideByMaxd(keys=keys)
    if method == "dataset_max":
        return VolumeMaxd(keys=keys)
    raise ValueError(f"unknown normalization {method!r}")


def case_transform(layout, source: str, target: str, options: SliceConfig | int) -> Compose:
    """Everything after loading: ``layout`` is a DatasetLayout or the LabelRules of one case."""
    if isinstance(options, int):  # the older signature: an image size
        options = SliceConfig(image_size=options)
    images = [source, target]
    every = [*images, "label"]
    steps: list = [
        SelectChanneld(keys=every),
        CheckGeometryd(keys=every),
        Orientationd(keys=every, axcodes="RAS", labels=(("L", "R"), ("P", "A"), ("I", "S"))),
    ]
    if options.half:
        steps.append(KeepHalfd(keys=every, half=options.half))
    size = (*options.shape, -1)  # (rows, columns) in plane; every axial slice kept
    steps += [
        LayoutMasksd(layout, images),
        AxialFractionsd(keys=images),
        normalisation(images, options.normalization),
        Resized(keys=images, spatial_size=size, mode="area"),
        Resized(keys=["tumor"], spatial_size=size, mode="nearest"),
    ]
    return Compose(steps)


# --------------------------------------------------------------------------------------------
# One case
# --------------------------------------------------------------------------------------------


def one_line(exc: BaseException) -> str:
    """A readable one-line reason from an exception raised while reading a file (ITK's messages
    span several lines and start with a source location)."""
    text = " ".join(str(exc).split())
    text = re.sub(r"\S+\.(cxx|cpp|h|hxx):\d+:\s*", "", text)
    text = re.sub(r"ITK ERROR: \w+\(0x[0-9a-f]+\):\s*", "", text)
    text = text.replace("Reason: No such file or directory", "").strip()
    if "cannot find a suitable reader" in text:
        text = "no image reader for this file type"
    return f"{type(exc).__name__}: {text[:240]}" if text else type(exc).__name__


def root_cause(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


@contextlib.contextmanager
def native_stderr(captured: list[str]):
    """Collect what native code (ITK's MetaImage reader) writes straight to file descriptor 2, so
    that a failure stays one line and its detail can go into the error message."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable descriptor 2: nothing to capture
        yield
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            captured.append(sink.read().decode("utf-8", "replace"))


def load_volumes(case: Case, keys: dict[str, Path | tuple[Path, int]]) -> dict:
    """MONAI ``LoadImaged`` per file (channel first), so that a failure names its file."""
    d: dict[str, Any] = {}
    for key, entry in keys.items():
        path, channel = (entry[0], entry[1]) if isinstance(entry, tuple) else (entry, None)
        path = Path(path)
        if not path.is_file():
            raise DataError(f"case {case.case_id}: {path}: missing file")
        d[key], d[f"{key}{CHANNEL_SUFFIX}"] = str(path), channel
        native: list[str] = []
        try:
            with native_stderr(native):
                d = LoadImaged(keys=key, image_only=True, ensure_channel_first=True)(d)
        except Exception as exc:  # MONAI wraps reader errors; report the root cause with the file
            reason = one_line(root_cause(exc)).replace(f"File cannot be read: {path} for reading.", "").rstrip(": ")
            detail = " ".join(" ".join(native).split())
            if detail:
                reason = f"{reason}: {detail[:200]}"
            if path.suffix.lower() in (".mha", ".mhd") and "no image reader" in reason:
                reason = "reading MetaImage needs ITK: pip install itk-io"
            raise DataError(f"case {case.case_id}: {path}: cannot read ({reason})") from exc
    return d


def read_case(case: Case, layout: DatasetLayout, source: str, target: str, options: SliceConfig) -> tuple[SliceSet, dict[str, float]]:
    """All kept axial slices of one case, and each modality's volume maximum (for ``dataset_max``,
    whose slices are returned unnormalised)."""
    for modality in (source, target):
        if modality not in case.images:
            raise DataError(f"case {case.case_id}: has no {modality} image")
    d = load_volumes(case, {source: case.images[source], target: case.images[target], "label": case.label})
    try:
        d = case_transform(label_rules(layout, case), source, target, options)(d)
    except Exception as exc:  # MONAI wraps transform errors; report the root cause with the case
        cause = root_cause(exc)
        if isinstance(cause, DataError):
            raise DataError(f"case {case.case_id}: {cause}") from exc
        raise DataError(f"case {case.case_id}: cannot process its files ({one_line(cause)})") from exc
    brain_fraction, tumor_fraction = np.asarray(d["brain_fraction"]), np.asarray(d["tumor_fraction"])
    keep = brain_fraction > options.min_brain_fraction
    is_tumor = tumor_fraction > options.min_tumor_fraction
    if options.drop_ambiguous:
        keep &= is_tumor | (tumor_fraction == 0)
    z = np.flatnonzero(keep)

    def axial(key: str) -> np.ndarray:
        volume = np.asarray(d[key])[0]  # (H, W, Z)
        return np.moveaxis(volume[..., z], -1, 0)

    slices = SliceSet(
        source=axial(source).astype(np.float32),
        target=axial(target).astype(np.float32),
        tumor_mask=axial("tumor") > 0.5,
        brain_fraction=brain_fraction[z].astype(np.float32),
        tumor_fraction=tumor_fraction[z].astype(np.float32),
        is_tumor=is_tumor[z],
        case_id=np.array([case.case_id] * len(z)),
        slice_index=z.astype(np.int32),
    )
    maxima = {key: d[f"{key}{MAX_SUFFIX}"] for key in (source, target) if f"{key}{MAX_SUFFIX}" in d}
    return slices, maxima


def divide_by(slices: SliceSet, source_max: float, target_max: float) -> SliceSet:
    """``dataset_max``: scale raw slices by the data set's maxima (in place), clipped to [0, 1]."""
    for name, peak in (("source", source_max), ("target", target_max)):
        if peak <= 0:
            raise DataError(f"normalization dataset_max: the {name} modality has no positive intensity in any case")
        array = getattr(slices, name)
        np.divide(array, np.float32(peak), out=array)
        np.clip(array, 0.0, 1.0, out=array)
    return slices


def load_case_slices(case: Case, layout: DatasetLayout, source: str, target: str, options: SliceConfig) -> SliceSet:
    """All kept axial slices of one case (with ``dataset_max``, the case is its own data set)."""
    slices, maxima = read_case(case, layout, source, target, options)
    if options.normalization == "dataset_max":
        divide_by(slices, maxima[source], maxima[target])
    return slices


def concatenate(parts: Sequence[SliceSet]) -> SliceSet:
    return SliceSet(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(SliceSet)})


class SliceSpill:
    """Collects the slices of many cases: the image-sized arrays go to temporary files as each case
    is read, so joining them needs memory for the result only (not the parts and the result)."""

    SPILLED = ("source", "target", "tumor_mask")

    def __init__(self, folder: Path | None = None) -> None:
        if folder is not None:
            Path(folder).mkdir(parents=True, exist_ok=True)
        self._dir = tempfile.TemporaryDirectory(dir=folder, prefix=".slices-")
        self._files = {name: open(Path(self._dir.name) / name, "wb") for name in self.SPILLED}
        self._kept: dict[str, list[np.ndarray]] = {f.name: [] for f in fields(SliceSet) if f.name not in self.SPILLED}
        self._layout: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}
        self.count = 0

    def add(self, part: SliceSet) -> None:
        for name in self.SPILLED:
            array = getattr(part, name)
            self._layout.setdefault(name, (array.dtype, array.shape[1:]))
            array.tofile(self._files[name])  # always written in C order
        for name, arrays in self._kept.items():
            arrays.append(getattr(part, name))
        self.count += len(part)

    def join(self) -> SliceSet:
        arrays = {name: np.concatenate(parts) for name, parts in self._kept.items()}
        for name, handle in self._files.items():
            handle.close()
            dtype, shape = self._layout[name]
            arrays[name] = np.fromfile(handle.name, dtype=dtype).reshape(self.count, *shape)
            Path(handle.name).unlink()
        self.close()
        return SliceSet(**arrays)

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._dir.cleanup()


# --------------------------------------------------------------------------------------------
# Many cases, and the prepared-slice cache
# --------------------------------------------------------------------------------------------


def scan_cases(layout: DatasetLayout, root: Path, modalities: tuple[str, ...]) -> tuple[list[Case], list[tuple[str, str]]]:
    """Usable cases and ``(case_id, reason)`` of unusable ones; a layout without ``scan`` raises
    on its first unusable case (through ``cases``)."""
    scan = getattr(layout, "scan", None)
    if callable(scan):
        cases, problems = scan(root, modalities)
        return list(cases), [tuple(p) for p in problems]
    return list(layout.cases(root, modalities)), []


def _case_files(cases: Sequence[Case], source: str, target: str) -> Iterator[tuple[str, Path, int | None, os.stat_result]]:
    """(case id, path, channel, stat) of the source, target and label file of every case."""
    for case in cases:
        for entry in (case.images[source], case.images[target], case.label):
            path, channel = (entry[0], entry[1]) if isinstance(entry, tuple) else (entry, None)
            path = Path(path)
            try:
                stat = path.stat()
            except OSError:
                raise DataError(f"case {case.case_id}: {path}: missing file") from None
            yield case.case_id, path, channel, stat


def _what_is_read(layout: DatasetLayout, source: str, target: str, options: SliceConfig) -> dict[str, Any]:
    return {"version": SLICE_CACHE_VERSION, "layout": layout.name, "source": source, "target": target, "options": slice_options(options)}


def fingerprint(
    cases: Sequence[Case],
    layout: DatasetLayout,
    source: str,
    target: str,
    options: SliceConfig,
    problems: Sequence[tuple[str, str]] = (),
) -> str:
    """Identifies the prepared slices: every file's path (and channel), size and mtime, the cases
    found unusable while listing, the layout, modalities and all slice options."""
    files = [[case_id, str(path.resolve()), channel, stat.st_size, stat.st_mtime_ns] for case_id, path, channel, stat in _case_files(cases, source, target)]
    return stable_hash({**_what_is_read(layout, source, target, options), "files": files, "unusable": sorted(map(list, problems))})


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:  # a layout may point outside the folder (links): keep the name
        return path.name


def portable_identity(
    root: Path, cases: Sequence[Case], read: Sequence[str], skipped: Sequence[tuple[str, str]],
    layout: DatasetLayout, source: str, target: str, options: SliceConfig,
) -> str:
    """Identifies the data wherever it lies (unlike :func:`fingerprint`, a cache key): the layout,
    modalities, slice options, and each case read with its files' paths relative to ``root`` and
    sizes, plus the cases left out. Two copies of BraTS on two machines give the same identity."""
    kept = [case for case in cases if case.case_id in set(read)]
    files = sorted([case_id, _relative(path, root), channel, stat.st_size] for case_id, path, channel, stat in _case_files(kept, source, target))
    return stable_hash({**_what_is_read(layout, source, target, options), "files": files, "left_out": sorted(case for case, _ in skipped)})


@dataclass
class Prepared:
    """The outcome of :func:`prepare`."""

    slices: SliceSet
    fingerprint: str
    cache: Path | None  # the cache file (None when not caching)
    status: str  # "reused", "built", "rebuilt" (a stale cache of the same folder replaced) or "uncached"
    cases: tuple[str, ...]  # the cases whose slices are here
    skipped: tuple[tuple[str, str], ...]  # (case id, reason) of every unusable case left out
    meta: dict
    identity: str = ""  # :func:`portable_identity`

    @property
    def summary(self) -> dict:
        tumor = int(self.slices.is_tumor.sum())
        return {"cases": len(self.cases), "skipped": len(self.skipped), "slices": len(self.slices), "tumor": tumor, "healthy": len(self.slices) - tumor}


def cache_meta(path: Path) -> dict | None:
    """The ``meta`` record of a cache file, or None when it has none or cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "meta" not in data.files:
                return None
            return json.loads(str(data["meta"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def load_cache(path: Path) -> tuple[SliceSet, dict] | None:
    """A cache file's slices and meta, or None when it is unreadable (then it is rebuilt)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            slices = SliceSet(**{f.name: data[f.name] for f in fields(SliceSet)})
            meta = json.loads(str(data["meta"])) if "meta" in data.files else {}
        return slices, meta
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def prepare(
    root: Path,
    layout: DatasetLayout,
    source: str,
    target: str,
    options: SliceConfig,
    cache_dir: Path | None = None,
    progress: bool = True,
    skip_bad: bool = False,
) -> Prepared:
    """Every kept slice of every case under ``root``: reuses a cache whose fingerprint matches,
    else reads the cases (one at a time) and writes ``cache_dir/slices-<fingerprint>.npz``.

    An unusable case raises :class:`DataError` naming the case and file, unless ``skip_bad``: then
    it is left out and listed (in the result and in the cache). A cache built with ``skip_bad`` is
    reused by later calls without it (the files and their problems are unchanged)."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: data folder does not exist")
    if not root.is_dir():
        raise DataError(f"{root}: is not a folder")
    cases, problems = scan_cases(layout, root, (source, target))
    if not cases and not problems:
        raise DataError(f"{root}: no cases found for layout '{layout.name}'")
    key = fingerprint(cases, layout, source, target, options, problems)
    cached = Path(cache_dir) / f"slices-{key[:16]}.npz" if cache_dir else None
    unreadable = False
    if cached is not None and cached.is_file():
        unreadable = True  # unless it loads below
        loaded = load_cache(cached)
        if loaded is not None and loaded[1].get("fingerprint") == key:
            slices, meta = loaded
            skipped = tuple((str(c), str(r)) for c, r in meta.get("skipped", []))
            read = tuple(meta.get("cases", []))
            identity = portable_identity(root, cases, read, skipped, layout, source, target, options)
            return Prepared(slices, key, cached, "reused", read, skipped, meta, identity)
    if problems and not skip_bad:
        raise DataError(f"{problems[0][1]}{SKIP_BAD_HINT.format(root=root)}")

    started = time.perf_counter()
    maxima, read, skipped = [], [], list(problems)
    spill = SliceSpill(cache_dir)
    try:
        for case in tqdm(cases, desc="reading cases", unit="case", leave=False, disable=not (progress and sys.stderr.isatty())):
            try:
                part, peaks = read_case(case, layout, source, target, options)
            except DataError as exc:
                if not skip_bad:
                    raise DataError(f"{exc}{SKIP_BAD_HINT.format(root=root)}") from None
                skipped.append((case.case_id, str(exc)))
                continue
            spill.add(part)
            maxima.append(peaks)
            read.append(case.case_id)
        skipped.sort()
        if not read:
            raise DataError(f"{root}: every case is unusable ({len(skipped)} skipped; first: {skipped[0][1]})")
        slices = spill.join()
    finally:
        spill.close()
    dataset_max = None
    if options.normalization == "dataset_max":
        dataset_max = {m: max(p[m] for p in maxima) for m in (source, target)}
        divide_by(slices, dataset_max[source], dataset_max[target])
    meta = {
        "fingerprint": key,
        "version": SLICE_CACHE_VERSION,
        "root": str(root.resolve()),
        "layout": layout.name,
        "source": source,
        "target": target,
        "options": slice_options(options),
        "cases": read,
        "skipped": [list(s) for s in skipped],
        "dataset_max": dataset_max,
        "seconds": round(time.perf_counter() - started, 3),
    }
    status = "uncached"
    if cached is not None:
        status = "rebuilt" if remove_stale(Path(cache_dir), meta) or unreadable else "built"
        slices.save(cached, meta=np.array(json.dumps(meta)))
    identity = portable_identity(root, cases, read, skipped, layout, source, target, options)
    return Prepared(slices, key, cached, status, tuple(read), tuple(skipped), meta, identity)


def remove_stale(cache_dir: Path, meta: dict) -> int:
    """Delete caches of the same folder, layout, modalities and options whose fingerprint differs
    (their files changed since); returns how many."""
    removed = 0
    same = ("root", "layout", "source", "target", "options")
    for path in cache_dir.glob("slices-*.npz"):
        other = cache_meta(path)
        if other and other.get("fingerprint") != meta["fingerprint"] and all(other.get(k) == meta[k] for k in same):
            path.unlink(missing_ok=True)
            removed += 1
    return removed


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
    prepared = prepare(root, layout, source, target, options, cache_dir, progress)
    return prepared.slices, prepared.fingerprint
