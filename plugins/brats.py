"""Folder layouts of the BraTS challenges in NIfTI (one folder per case, one file per modality).

BraTS 2018-2021 (``brats2018``): ``<case>/<case>_{flair,t1,t1ce,t2,seg}.nii.gz``; labels 0 background,
1 necrotic / non-enhancing core, 2 edema, 4 enhancing tumor. The synthetic data benchbias generates
uses this layout too.

BraTS 2023+ (``brats2023``, GLI and the other 2023 cohorts): ``<case>/<case>-{t2f,t1n,t1c,t2w,seg}.nii.gz``;
labels 0 background, 1 necrotic core, 2 edema, 3 enhancing tumor.

Both: tumor = any label > 0; brain = voxels non-zero in any modality (the images are skull-stripped).
Case folders sit directly under the data folder, or one level down in grade folders (``HGG/``,
``LGG/`` of BraTS 2018-2020). ``.nii`` files are accepted where ``.nii.gz`` is missing. Benchmarks
name modalities flair / t1 / t1ce / t2 for both (BraTS 2023's own t2f / t1n / t1c / t2w work too).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from benchbias.api import Case, DataError, ScanningLayout, canonical_modality, hidden, hookimpl, unknown_modality

SUFFIXES = (".nii.gz", ".nii")


class ChallengeLayout(ScanningLayout):
    """``<case>/<case><sep><token>.nii.gz`` per modality plus ``<case><sep>seg.nii.gz``."""

    separator: ClassVar[str]
    files: ClassVar[dict[str, str]]  # canonical modality -> file token

    @classmethod
    def _file(cls, folder: Path, token: str) -> Path | None:
        for suffix in SUFFIXES:
            path = folder / f"{folder.name}{cls.separator}{token}{suffix}"
            if path.is_file():
                return path
        return None

    @classmethod
    def matches(cls, root: Path) -> bool:
        token = cls.files["flair"]
        for pattern in (f"*/*{cls.separator}{token}.nii*", f"*/*/*{cls.separator}{token}.nii*"):
            if any(root.glob(pattern)):
                return True
        return False

    def token(self, modality: str) -> str | None:
        if modality in self.files:
            return self.files[modality]
        if modality in self.files.values():  # the layout's own name, e.g. t2f
            return modality
        canonical = canonical_modality(modality)
        return self.files.get(canonical) if canonical else None

    def check_modalities(self, root: Path, modalities: tuple[str, ...]) -> None:
        for modality in modalities:
            if self.token(modality) is None:
                known = tuple(f"{m} ({t})" if m != t else m for m, t in self.files.items())
                raise unknown_modality(self.name, root, modality, known)

    def entries(self, root: Path) -> list[tuple[str, Path]]:
        flair = self.files["flair"]
        folders = []
        for folder in sorted(p for p in root.iterdir() if p.is_dir() and not hidden(p)):
            has_files = any(f.is_file() for f in folder.glob("*.nii*"))
            inner = [p for p in folder.iterdir() if p.is_dir() and not hidden(p)] if not has_files else []
            if inner and any(any(p.glob(f"*{self.separator}{flair}.nii*")) for p in inner):
                folders += sorted(inner)  # a grade folder (HGG/, LGG/)
            else:
                folders.append(folder)
        return sorted(((f.name, f) for f in folders), key=lambda e: e[0])

    def read_case(self, root: Path, case_id: str, folder: Path, modalities: tuple[str, ...]) -> Case:
        files = {}
        for key, token in [*((m, self.token(m)) for m in modalities), ("label", "seg")]:
            path = self._file(folder, token)
            if path is None:
                raise DataError(f"case {case_id}: missing file {folder / f'{folder.name}{self.separator}{token}.nii.gz'}")
            files[key] = path
        label = files.pop("label")
        return Case(case_id=case_id, images=files, label=label)


class BraTS2018(ChallengeLayout):
    name = "brats2018"
    description = "BraTS 2018-2021: <case>/<case>_{flair,t1,t1ce,t2,seg}.nii.gz, labels {0,1,2,4}, tumor = label > 0"
    separator = "_"
    files = {"flair": "flair", "t1": "t1", "t1ce": "t1ce", "t2": "t2"}
    modalities = tuple(files)
    labels = frozenset({0, 1, 2, 4})


class BraTS2023(ChallengeLayout):
    name = "brats2023"
    description = "BraTS 2023+ (GLI): <case>/<case>-{t2f,t1n,t1c,t2w,seg}.nii.gz, labels {0,1,2,3}, tumor = label > 0"
    separator = "-"
    files = {"flair": "t2f", "t1": "t1n", "t1ce": "t1c", "t2": "t2w"}
    modalities = tuple(files)
    labels = frozenset({0, 1, 2, 3})


@hookimpl
def register_datasets(register):
    register(BraTS2018)
    register(BraTS2023)
