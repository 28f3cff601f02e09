"""Read one case through MONAI (a failure names its file) and keep its axial slices that hold
enough brain; list the cases of a data folder."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from monai.transforms import LoadImaged

from benchbias.data.errors import DataError
from benchbias.data.slice_set import SliceSet
from benchbias.data.transforms import CHANNEL_SUFFIX, HALF_AS_STORED, MAX_SUFFIX, case_transform, label_rules
from benchbias.foundation.config import SliceConfig
from benchbias.foundation.contract import Case, DatasetLayout


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
    whose slices are returned unnormalised); ``half_as_stored`` is there, at 0, when the case's header
    puts the kept half elsewhere than the upper half of the file's first axis."""
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
    if d.get(HALF_AS_STORED) is False:  # the kept half is not the stored columns the paper's notebook kept
        maxima[HALF_AS_STORED] = 0.0
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


def scan_cases(layout: DatasetLayout, root: Path, modalities: tuple[str, ...]) -> tuple[list[Case], list[tuple[str, str]]]:
    """Usable cases and ``(case_id, reason)`` of unusable ones; a layout without ``scan`` raises
    on its first unusable case (through ``cases``)."""
    scan = getattr(layout, "scan", None)
    if callable(scan):
        cases, problems = scan(root, modalities)
        return list(cases), [tuple(p) for p in problems]
    return list(layout.cases(root, modalities)), []
