"""The synthetic data set on disk: every subject of :mod:`benchbias.data.synthetic` as BraTS-style
NIfTI files, and ``synthetic.json`` (generator version, spec, subject ids), written last."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

from benchbias.data.synthetic import GENERATOR_VERSION, generate_subject, subject_id
from benchbias.foundation.config import SynthSpec
from benchbias.foundation.jsonio import write_atomically

METADATA_FILE = "synthetic.json"


def _affine(shape: tuple[int, int, int]) -> np.ndarray:
    """1 mm isotropic, x and y flipped like BraTS (LPS storage), world origin at the volume centre.

    MONAI's Orientationd(axcodes="RAS") flips x and y back and leaves z axial.
    """
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    affine[:3, 3] = [(shape[0] - 1) / 2, (shape[1] - 1) / 2, -(shape[2] - 1) / 2]
    return affine


def _save_nifti_atomically(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    image = nib.Nifti1Image(array, affine)
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    image.header.set_xyzt_units("mm")
    temporary = path.with_name(f".{path.name[: -len('.nii.gz')]}.tmp{os.getpid()}.nii.gz")
    try:
        nib.save(image, temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_dataset(out_dir: Path, spec: SynthSpec, progress: bool = False) -> list[Path]:
    """Write every subject as BraTS-style NIfTI files under `out_dir`; return the subject folders.

    ``out_dir/synthetic.json`` (generator version, spec, subject ids) is removed first and
    written last, so its presence means the dataset is complete.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / METADATA_FILE).unlink(missing_ok=True)
    affine = _affine(spec.shape)
    indices = range(spec.subjects)
    if progress and sys.stderr.isatty():  # a bar in a log file would be one long line of carriage returns
        from tqdm import tqdm

        indices = tqdm(indices, desc="synthetic BraTS", unit="subject")
    elif progress:
        print(f"generating the synthetic data set ({spec.subjects} subjects) into {out_dir}", file=sys.stderr)
    subject_dirs = []
    for index in indices:
        name = subject_id(index)
        subject_dir = out_dir / name
        subject_dir.mkdir(exist_ok=True)
        for modality, array in generate_subject(index, spec).items():
            _save_nifti_atomically(array, affine, subject_dir / f"{name}_{modality}.nii.gz")
        subject_dirs.append(subject_dir)
    metadata = {
        "generator_version": GENERATOR_VERSION,
        "spec": dataclasses.asdict(spec),
        "subject_ids": [subject_id(i) for i in range(spec.subjects)],
    }
    text = json.dumps(metadata, indent=2) + "\n"
    write_atomically(out_dir / METADATA_FILE, lambda handle: handle.write(text.encode()))
    return subject_dirs
