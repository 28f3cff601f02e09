"""BRATS2013 as distributed (the paper's data set): MetaImage ``.mha`` files read through MONAI's ITKReader.

On disk (``BRATS2013/`` or ``BRATS-2/``)::

    Synthetic_Data/HG/0001/VSD.Brain.XX.O.MR_Flair.<id>/VSD.Brain.XX.O.MR_Flair.<id>[.N4ITK].mha
                           VSD.Brain.XX.O.MR_T1.<id>/...    VSD.Brain.XX.O.MR_T1c.<id>/...    VSD.Brain.XX.O.MR_T2.<id>/...
                           VSD.Gray_matter_of_neuraxis_5more.XX.O.OT.<id>/...mha   (tissue + tumor labels)
                           VSD.Brain_1more.XX.O.OT.<id>/...mha                     (tumor labels only)
    Synthetic_Data/LG/...
    Image_Data/HG/0001/VSD.Brain.XX.O.MR_Flair.<id>/...     VSD.Brain_3more.XX.XX.OT.<id>/...mha

A case is a folder holding ``VSD.*`` sub-folders (or ``.mha`` files directly); its id is its path
below the data folder (``HG/0001``, or ``Synthetic_Data/HG/0001`` from the top folder), so sorted ids
run HG then LG as in the paper's notebook. Files are matched case-insensitively by their ``MR_<token>``
(flair -> ``MR_Flair``, t1 -> ``MR_T1``, t1ce -> ``MR_T1c``, t2 -> ``MR_T2``); when a modality has an
N4ITK bias-corrected file (``N4ITK`` in the name) it is preferred; two candidates that N4ITK does not
separate are an error naming both.

Label rules (``rules_for(case)``), chosen by the case's label files:

- **Simulated cases** (a ``*5more*`` label map, as in ``Synthetic_Data``): the map codes healthy tissue
  too, so brain = label != 0 and tumor = label > 2 (the rule of the paper's data notebook, which also
  rounds the labels first: some copies went through N4ITK). Labels 0..6 are accepted (the file name
  says: one structure and five more).
- **Real cases** (``Image_Data``: ``VSD.Brain_3more`` / ``_2more`` ``...OT`` maps, or a simulated case
  with only its ``Brain_1more`` tumor map): BRATS labels 0 everything else, 1 necrosis, 2 edema,
  3 non-enhancing tumor, 4 enhancing tumor; tumor = label > 0 and brain = voxels non-zero in any
  modality (the images are skull-stripped), as for the later BraTS layouts.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from benchbias.api import Case, DataError, LabelRules, ScanningLayout, check_labels, hidden, hookimpl, unknown_modality

SUFFIXES = (".mha", ".mhd")
TOKENS = {"flair": "flair", "t1": "t1", "t1ce": "t1c", "t2": "t2"}  # canonical -> MR_<token>
FILE_NAMES = {"flair": "Flair", "t1": "T1", "t1ce": "T1c", "t2": "T2"}
MR_TOKEN = re.compile(r"(?:^|[._])mr_([a-z0-9]+)(?=[._]|$)")
OT_TOKEN = re.compile(r"(?:^|[._])ot(?=[._]|$)")


class SimulatedRules(LabelRules):
    labels = frozenset(range(7))
    round_labels = True
    description = "simulated: brain = label != 0, tumor = label > 2"

    def tumor_mask(self, label: np.ndarray) -> np.ndarray:
        return check_labels(label, self.labels, round_first=True) > 2

    def brain_mask(self, label: np.ndarray, images) -> np.ndarray:
        return check_labels(label, self.labels, round_first=True) != 0


class RealRules(LabelRules):
    labels = frozenset({0, 1, 2, 3, 4})
    round_labels = True
    description = "real: tumor = label > 0, brain = non-zero in any modality"


def _stem(path: Path) -> str:
    name = path.name.lower()
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _mr_token(path: Path) -> str | None:
    for name in (_stem(path), path.parent.name.lower()):
        match = MR_TOKEN.search(name)
        if match:
            return match.group(1)
    return None


def _is_label(path: Path) -> bool:
    return bool(OT_TOKEN.search(_stem(path)) or (path.parent.name.lower().startswith("vsd.") and OT_TOKEN.search(path.parent.name.lower())))


def _n4(path: Path) -> bool:
    return "n4itk" in path.name.lower()


def _case_folder(path: Path) -> Path:
    return path.parent.parent if path.parent.name.lower().startswith("vsd.") else path.parent


def _pick(case_id: str, what: str, candidates: list[Path]) -> Path:
    """One file: the only candidate, else the only N4ITK-corrected one; anything else is ambiguous."""
    if len(candidates) == 1:
        return candidates[0]
    corrected = [c for c in candidates if _n4(c)]
    if len(corrected) == 1:
        return corrected[0]
    shown = corrected if len(corrected) > 1 else candidates
    raise DataError(f"case {case_id}: ambiguous {what} files: {', '.join(str(p) for p in shown)}")


class BRATS2013(ScanningLayout):
    name = "brats2013"
    description = (
        "BRATS2013 as distributed: Synthetic_Data/ and Image_Data/ HG|LG case folders of VSD.*.mha (N4ITK preferred); "
        "simulated cases: brain = label != 0, tumor = label > 2; real cases: tumor = label > 0"
    )
    modalities = tuple(TOKENS)
    labels = RealRules.labels
    simulated = SimulatedRules()
    real = RealRules()

    @classmethod
    def matches(cls, root: Path) -> bool:
        for depth in range(0, 6):
            for path in root.glob("*/" * depth + "*.mha"):
                if path.name.lower().startswith("vsd"):
                    return True
        return False

    def check_modalities(self, root: Path, modalities: tuple[str, ...]) -> None:
        for modality in modalities:
            if self.token(modality) is None:
                raise unknown_modality(self.name, root, modality, tuple(f"{m} (MR_{FILE_NAMES[m]})" for m in TOKENS))

    @staticmethod
    def token(modality: str) -> str | None:
        lowered = modality.lower()
        if lowered in TOKENS:
            return TOKENS[lowered]
        return lowered if lowered in TOKENS.values() else None  # the file's own name: Flair, T1c, ...

    def entries(self, root: Path) -> list[tuple[str, list[Path]]]:
        groups: dict[Path, list[Path]] = {}
        for path in root.rglob("*"):
            if path.suffix.lower() not in SUFFIXES or not path.is_file() or hidden(path):
                continue
            if any(hidden(p) for p in path.relative_to(root).parents if p != Path(".")):
                continue
            folder = _case_folder(path)
            groups.setdefault(folder, []).append(path)
        entries = []
        for folder, files in groups.items():
            entries.append((folder.relative_to(root).as_posix() if folder != root else root.name, sorted(files)))
        return sorted(entries, key=lambda e: e[0])

    def read_case(self, root: Path, case_id: str, files: list[Path], modalities: tuple[str, ...]) -> Case:
        folder = _case_folder(files[0])
        images = {}
        for modality in modalities:
            token = self.token(modality)
            candidates = [f for f in files if _mr_token(f) == token]
            if not candidates:
                raise DataError(f"case {case_id}: missing file *MR_{FILE_NAMES.get(modality.lower(), modality)}*.mha in {folder}")
            images[modality] = _pick(case_id, f"MR_{FILE_NAMES.get(modality.lower(), modality)}", candidates)
        labels = [f for f in files if _is_label(f) and _mr_token(f) is None]
        complete = [f for f in labels if "5more" in f.name.lower() or "5more" in f.parent.name.lower()]
        if complete:
            label = _pick(case_id, "label map (*5more*OT)", complete)
        elif labels:
            label = _pick(case_id, "label map (*OT)", labels)
        else:
            raise DataError(f"case {case_id}: missing file VSD.*.OT.*.mha (the label map) in {folder}")
        return Case(case_id=case_id, images=images, label=label)

    def rules_for(self, case: Case) -> LabelRules:
        """Simulated cases (a ``*5more*`` tissue + tumor map) or real ones (BRATS tumor labels)."""
        label = case.label
        return self.simulated if "5more" in label.name.lower() or "5more" in label.parent.name.lower() else self.real

    def tumor_mask(self, label: np.ndarray) -> np.ndarray:
        """The real-case rule; simulated cases use :attr:`simulated` through :meth:`rules_for`."""
        return self.real.tumor_mask(label)


@hookimpl
def register_datasets(register):
    register(BRATS2013)
