"""Shared pieces of the folder layouts (plugins/brats.py, plugins/brats2013.py, plugins/msd.py).

A :class:`ScanningLayout` lists its cases one by one: :meth:`~ScanningLayout.scan` returns the
usable cases and, separately, every unusable one with a one-line reason, so that
``benchbias data prepare --skip-bad`` can go on without it; :meth:`~ScanningLayout.cases` (the
plugin contract) raises on the first unusable case instead.

Label rules: a layout is its own rule (``tumor_mask``, ``brain_mask``, the valid label set). A
layout whose cases follow different rules (BRATS2013: simulated vs. real cases) also implements
``rules_for(case)``, which returns the :class:`LabelRules` of that case; the MONAI pipeline in
:mod:`benchbias.data.slice_cache` asks for it when present.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from benchbias.data.errors import DataError
from benchbias.foundation.contract import Case, DatasetLayout

CANONICAL_MODALITIES = ("flair", "t1", "t1ce", "t2")
"""The modality names a benchmark may use with every layout (each layout maps them to its files)."""

# Channel / file names used for each canonical modality, compared after normalise_name().
MODALITY_ALIASES: dict[str, frozenset[str]] = {
    "flair": frozenset({"flair", "t2flair", "t2f"}),
    "t1": frozenset({"t1", "t1w", "t1n", "t1native", "nativet1"}),
    "t1ce": frozenset({"t1ce", "t1c", "t1gd", "t1wce", "t1gad", "t1post", "t1contrast", "t1wgd"}),
    "t2": frozenset({"t2", "t2w"}),
}


def normalise_name(name: str) -> str:
    """``"T1-Gd"`` -> ``"t1gd"``: lower case, letters and digits only."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def canonical_modality(name: str) -> str | None:
    """The canonical modality a (file or channel) name stands for, or None."""
    norm = normalise_name(name)
    for canonical, aliases in MODALITY_ALIASES.items():
        if norm in aliases:
            return canonical
    return None


def unknown_modality(layout: str, root: Path, modality: str, known: tuple[str, ...]) -> DataError:
    return DataError(f"{root}: layout {layout} has no modality '{modality}' (has: {', '.join(known)})")


def check_labels(label: np.ndarray, allowed: frozenset[int], round_first: bool = False) -> np.ndarray:
    """The label map as integers; :class:`DataError` naming the unexpected values otherwise.

    ``round_first`` rounds to the nearest integer first (BRATS2013's paper notebook does this:
    some copies of its label maps went through N4ITK and hold near-integer floats)."""
    label = np.asarray(label)
    values = np.unique(label)
    if round_first:
        label = np.rint(label)
        values = np.unique(label)
    fractional = values[values != np.round(values)]
    if fractional.size:
        shown = ", ".join(f"{v:g}" for v in fractional[:5])
        raise DataError(f"label map has non-integer values [{shown}{', ...' if fractional.size > 5 else ''}] (expected {sorted(allowed)})")
    unexpected = sorted(set(values.astype(np.int64).tolist()) - set(allowed))
    if unexpected:
        shown = ", ".join(str(v) for v in unexpected[:10]) + (", ..." if len(unexpected) > 10 else "")
        raise DataError(f"label map has unexpected values [{shown}] (expected {sorted(allowed)})")
    return label


class LabelRules:
    """How a label map (and the images) give the tumor and brain masks of one kind of case."""

    labels: frozenset[int] = frozenset()
    round_labels: bool = False
    description: str = ""

    def tumor_mask(self, label: np.ndarray) -> np.ndarray:
        """Tumor = any non-zero label (after checking the label set)."""
        return check_labels(label, self.labels, self.round_labels) > 0

    def brain_mask(self, label: np.ndarray, images: Mapping[str, np.ndarray]) -> np.ndarray:
        """Brain = voxels non-zero in any modality (the images are skull-stripped)."""
        mask = np.zeros(np.shape(label), dtype=bool)
        for image in images.values():
            mask |= np.asarray(image) > 0
        return mask


def hidden(path: Path) -> bool:
    """Dot files and folders, including macOS AppleDouble ``._name`` files shipped in some tarballs."""
    return path.name.startswith(".")


class ScanningLayout(DatasetLayout):
    """A layout that lists case entries and reads each one on its own (see the module docstring)."""

    labels: ClassVar[frozenset[int]] = frozenset()

    @abstractmethod
    def entries(self, root: Path) -> list[tuple[str, Any]]:
        """``(case_id, entry)`` for every candidate case under ``root``, sorted by case id."""

    @abstractmethod
    def read_case(self, root: Path, case_id: str, entry: Any, modalities: tuple[str, ...]) -> Case:
        """The case's files; :class:`DataError` (naming the case and file) when one is missing or ambiguous."""

    def check_modalities(self, root: Path, modalities: tuple[str, ...]) -> None:
        """Raise (for the whole data set, not one case) when a modality name means nothing here."""

    def scan(self, root: Path, modalities: tuple[str, ...]) -> tuple[list[Case], list[tuple[str, str]]]:
        """Usable cases, and ``(case_id, reason)`` for every unusable one."""
        self.check_modalities(root, modalities)
        cases, problems = [], []
        seen: set[str] = set()
        for case_id, entry in self.entries(root):
            if case_id in seen:
                problems.append((case_id, f"case {case_id}: found twice under {root}"))
                continue
            seen.add(case_id)
            try:
                cases.append(self.read_case(root, case_id, entry, modalities))
            except DataError as exc:
                problems.append((case_id, str(exc)))
        return cases, problems

    def cases(self, root: Path, modalities: tuple[str, ...]) -> list[Case]:
        cases, problems = self.scan(root, modalities)
        if problems:
            raise DataError(problems[0][1])
        return cases

    def tumor_mask(self, label: np.ndarray) -> np.ndarray:
        return check_labels(label, self.labels) > 0
