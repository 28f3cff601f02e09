"""Medical Segmentation Decathlon, Task01_BrainTumour (and MSD-style folders like it).

On disk::

    Task01_BrainTumour/dataset.json
    Task01_BrainTumour/imagesTr/BRATS_001.nii.gz     4-D: x, y, z, channel
    Task01_BrainTumour/labelsTr/BRATS_001.nii.gz

The channel order comes from ``dataset.json``'s ``modality`` mapping (Task01: ``{"0": "FLAIR",
"1": "T1w", "2": "t1gd", "3": "T2w"}``), never assumed: benchmarks name flair / t1 / t1ce / t2 (or the
channel names themselves) and each is found by name. Cases come from the ``training`` list of
``dataset.json`` (else every ``imagesTr/*.nii.gz`` with a label of the same name); the macOS ``._*``
files shipped in the Task01 tarball are ignored. Valid labels are the keys of ``dataset.json``'s
``labels`` (Task01: 0 background, 1 edema, 2 non-enhancing tumor, 3 enhancing tumor); tumor = any
label > 0, brain = voxels non-zero in any modality.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from benchbias.api import Case, DataError, LabelRules, ScanningLayout, canonical_modality, check_labels, hidden, hookimpl, normalise_name

TASK01_LABELS = frozenset({0, 1, 2, 3})


def _case_id(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


class MSDBrainTumor(ScanningLayout):
    name = "msd-task01"
    description = "MSD Task01_BrainTumour: imagesTr/*.nii.gz 4-D (channels named in dataset.json), labelsTr/, labels from dataset.json"
    modalities = ("flair", "t1", "t1ce", "t2")

    def __init__(self) -> None:
        self._info: dict[Path, dict] = {}

    @classmethod
    def matches(cls, root: Path) -> bool:
        return (root / "dataset.json").is_file() and (root / "imagesTr").is_dir()

    def info(self, root: Path) -> dict:
        """``dataset.json``, checked: channel names, label values and the training list."""
        root = Path(root)
        if root not in self._info:
            path = root / "dataset.json"
            try:
                raw = json.loads(path.read_text())
            except OSError as exc:
                raise DataError(f"{path}: cannot be read: {exc.strerror}") from None
            except ValueError as exc:
                raise DataError(f"{path}: invalid JSON: {exc}") from None
            modality = raw.get("modality") or raw.get("channel_names")
            if not isinstance(modality, dict) or not modality:
                raise DataError(f"{path}: has no 'modality' mapping of channel number to name")
            try:
                channels = {int(k): str(v) for k, v in modality.items()}
                labels = raw.get("labels") or {}
                if all(isinstance(v, int) for v in labels.values()) and labels:  # nnU-Net v2: {"background": 0, ...}
                    labels = frozenset(labels.values())
                else:  # MSD: {"0": "background", ...}
                    labels = frozenset(int(k) for k in labels) if labels else TASK01_LABELS
            except (TypeError, ValueError, AttributeError):
                raise DataError(f"{path}: 'modality' and 'labels' must map integers to names") from None
            self._info[root] = {"path": path, "channels": channels, "labels": labels, "training": raw.get("training")}
        return self._info[root]

    def channel(self, root: Path, modality: str) -> int | None:
        channels = self.info(root)["channels"]
        wanted = normalise_name(modality)
        exact = [c for c, name in channels.items() if normalise_name(name) == wanted]
        if exact:
            return exact[0] if len(exact) == 1 else self._ambiguous(root, modality, exact)
        canonical = canonical_modality(modality)
        found = [c for c, name in channels.items() if canonical and canonical_modality(name) == canonical]
        if len(found) > 1:
            self._ambiguous(root, modality, found)
        return found[0] if found else None

    def _ambiguous(self, root: Path, modality: str, channels: list[int]) -> int:
        names = self.info(root)["channels"]
        shown = ", ".join(f"{c}: {names[c]}" for c in channels)
        raise DataError(f"{self.info(root)['path']}: modality '{modality}' matches several channels ({shown})")

    def check_modalities(self, root: Path, modalities: tuple[str, ...]) -> None:
        for modality in modalities:
            if self.channel(root, modality) is None:
                names = self.info(root)["channels"]
                shown = ", ".join(f"{c}: {n}" for c, n in sorted(names.items()))
                raise DataError(f"{self.info(root)['path']}: no channel for modality '{modality}' (channels: {shown})")

    def entries(self, root: Path) -> list[tuple[str, tuple[Path, Path]]]:
        training = self.info(root)["training"]
        pairs = []
        if isinstance(training, list) and training:
            for item in training:
                if not isinstance(item, dict) or "image" not in item or "label" not in item:
                    raise DataError(f"{self.info(root)['path']}: every 'training' entry needs 'image' and 'label', got {item!r}")
                pairs.append((root / item["image"], root / item["label"]))
        else:
            for image in sorted((root / "imagesTr").glob("*.nii*")):
                if not hidden(image):
                    pairs.append((image, root / "labelsTr" / image.name))
        return sorted(((_case_id(image), (image, label)) for image, label in pairs), key=lambda e: e[0])

    def read_case(self, root: Path, case_id: str, entry: tuple[Path, Path], modalities: tuple[str, ...]) -> Case:
        image, label = (Path(p) for p in entry)
        for path in (image, label):
            if not path.is_file():
                raise DataError(f"case {case_id}: missing file {path}")
        return Case(case_id=case_id, images={m: (image, self.channel(root, m)) for m in modalities}, label=label)

    def rules_for(self, case: Case) -> LabelRules:
        """Task01's rule with the label set of the case's ``dataset.json`` (next to ``labelsTr/``)."""
        root = case.label.parent.parent
        rules = LabelRules()
        rules.labels = self.info(root)["labels"] if (root / "dataset.json").is_file() else TASK01_LABELS
        return rules

    def tumor_mask(self, label: np.ndarray) -> np.ndarray:
        """Task01's labels (0 background, 1 edema, 2 non-enhancing, 3 enhancing); tumor = label > 0."""
        return check_labels(label, TASK01_LABELS) > 0


@hookimpl
def register_datasets(register):
    register(MSDBrainTumor)
