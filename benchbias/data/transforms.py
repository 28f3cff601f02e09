"""The MONAI transforms that turn one case's loaded volumes into masks, per-slice fractions and
normalised, resized images.

Every layout takes the same path, one case (and one volume per modality) at a time:
``LoadImaged`` (MONAI picks ITKReader for MetaImage ``.mha``, NibabelReader for NIfTI; see
:mod:`benchbias.data.cases`) -> ``SelectChanneld`` (one channel of a 4-D file, e.g. MSD) ->
``CheckGeometryd`` (same shape and affine for every file of the case) -> ``Orientationd`` (RAS) ->
``KeepHalfd`` (optional: the left or right half of the patient) -> ``LayoutMasksd`` (brain and tumor
masks by the layout's label rule) -> ``AxialFractionsd`` (per-slice fractions at full resolution) ->
intensity normalisation -> ``Resized`` in plane.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
from monai.config import KeysCollection
from monai.transforms import Compose, MapTransform, Orientationd, Resized, ScaleIntensityRangePercentilesd

from benchbias.data.errors import DataError
from benchbias.foundation.config import SliceConfig
from benchbias.foundation.contract import Case, DatasetLayout

CHANNEL_SUFFIX = "_channel"
MAX_SUFFIX = "_max"
AFFINE_TOLERANCE = 1e-3  # mm (and direction cosines): two files of one case must agree this closely


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
            if HALF_AS_STORED not in d:
                d[HALF_AS_STORED] = half_as_stored(image, self.half)
            middle = image.shape[1] // 2
            d[key] = image[:, :middle] if self.half == "left" else image[:, middle:]
        return d


HALF_AS_STORED = "half_as_stored"


def half_as_stored(image: Any, half: str) -> bool | None:
    """Whether the patient's ``half`` is the upper half of the file's first array axis as stored (the
    columns x >= 128 the paper's notebook kept), by the header as loaded (before RAS orientation): the
    first axis must run along left-right, towards the patient's left for ``left``. None: no header."""
    meta = getattr(image, "meta", None) or {}
    affine = meta.get("original_affine")
    if affine is None:
        return None
    first_axis = np.asarray(affine, np.float64)[:3, 0]  # where index 0 -> 1 moves, in RAS millimetres
    if int(np.argmax(np.abs(first_axis))) != 0:
        return False
    towards = "left" if first_axis[0] < 0 else "right"  # RAS: x grows towards the patient's right
    return towards == half


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


class PerSliceRanged(MapTransform):
    """``normalization: per_slice``: every axial slice stretched to [0, 1] by its own minimum and
    maximum, as the byte scaling of ``scipy.misc.imresize`` did to each slice the paper's code wrote; a
    constant slice becomes 0."""

    def __call__(self, data: Mapping[Hashable, Any]) -> dict:
        d = dict(data)
        for key in self.key_iterator(d):
            image = torch.as_tensor(d[key], dtype=torch.float32)  # (channel, x, y, z): one slice per z
            low, high = image.amin(dim=(1, 2), keepdim=True), image.amax(dim=(1, 2), keepdim=True)
            span = high - low
            d[key] = torch.where(span > 0, (image - low) / span.clamp(min=torch.finfo(torch.float32).tiny), torch.zeros_like(image))
        return d


def normalisation(keys: list[str], method: str) -> MapTransform:
    if method == "percentile":
        # Robust per-volume scaling: background stays 0, the 99.5th percentile maps to 1.
        return ScaleIntensityRangePercentilesd(keys=keys, lower=0, upper=99.5, b_min=0.0, b_max=1.0, clip=True)
    if method == "max":
        return DivideByMaxd(keys=keys)
    if method == "dataset_max":
        return VolumeMaxd(keys=keys)
    if method == "per_slice":
        return PerSliceRanged(keys=keys)
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
        Resized(keys=images, spatial_size=size, mode=options.resize_mode),
        Resized(keys=["tumor"], spatial_size=size, mode="nearest"),
    ]
    return Compose(steps)
