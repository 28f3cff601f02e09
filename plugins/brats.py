"""Folder layouts of the BraTS challenges.

BraTS 2018-2021: ``<case>/<case>_{flair,t1,t1ce,t2,seg}.nii.gz``; labels 0 background,
1 necrotic / non-enhancing core, 2 edema, 4 enhancing tumor. Tumor = any label > 0.
The synthetic data benchbias generates uses this layout too.
"""
from pathlib import Path

import numpy as np

from benchbias import hookimpl
from benchbias.contract import Case, DatasetLayout
from benchbias.data.slices import DataError


class BraTS2018(DatasetLayout):
    name = "brats2018"
    description = "BraTS 2018-2021: <case>/<case>_{flair,t1,t1ce,t2,seg}.nii.gz, labels {0,1,2,4}"
    modalities = ("flair", "t1", "t1ce", "t2")
    labels = {0, 1, 2, 4}

    @classmethod
    def matches(cls, root: Path) -> bool:
        return any(root.glob("*/*_flair.nii.gz")) and any(root.glob("*/*_seg.nii.gz"))

    def cases(self, root: Path, modalities: tuple[str, ...]) -> list[Case]:
        for modality in modalities:
            if modality not in self.modalities:
                raise DataError(f"{root}: layout {self.name} has no modality '{modality}' (has: {', '.join(self.modalities)})")
        cases = []
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            files = {m: folder / f"{folder.name}_{m}.nii.gz" for m in (*modalities, "seg")}
            for path in files.values():
                if not path.is_file():
                    raise DataError(f"case {folder.name}: missing file {path}")
            label = files.pop("seg")
            cases.append(Case(case_id=folder.name, images=files, label=label))
        return cases

    def tumor_mask(self, label: np.ndarray) -> np.ndarray:
        unexpected = set(np.unique(label).astype(int).tolist()) - self.labels
        if unexpected:
            raise DataError(f"label map has unexpected values {sorted(unexpected)} (expected {sorted(self.labels)})")
        return label > 0


@hookimpl
def register_datasets(register):
    register(BraTS2018)
