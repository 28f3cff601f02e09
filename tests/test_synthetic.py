"""Tests of the synthetic BraTS-layout dataset generator (benchbias.data.synthetic)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from benchbias.data.synthetic import CSF, GENERATOR_VERSION, GM, WM, _generate_with_tissue, generate_subject, subject_id
from benchbias.data.synthetic_files import write_dataset
from benchbias.foundation.config import SynthSpec

MODALITIES = ("flair", "t1", "seg")
SPEC = SynthSpec(subjects=5, seed=0)
CHECKED_SUBJECTS = range(4)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    out_dir = tmp_path_factory.mktemp("synth")
    return out_dir, write_dataset(out_dir, SPEC)


@pytest.fixture(scope="module")
def subjects() -> list[tuple[dict[str, np.ndarray], np.ndarray]]:
    return [_generate_with_tissue(i, SPEC) for i in CHECKED_SUBJECTS]


def _nifti_path(out_dir: Path, index: int, modality: str) -> Path:
    name = subject_id(index)
    return out_dir / name / f"{name}_{modality}.nii.gz"


def test_subject_id_is_brats_style() -> None:
    assert subject_id(0) == "BraTS_Synth_000"
    assert subject_id(42) == "BraTS_Synth_042"


def test_spec_validates_and_normalises_shape() -> None:
    assert SynthSpec(shape=[32, 32, 20]).shape == (32, 32, 20)
    with pytest.raises(ValueError):
        SynthSpec(subjects=0)
    with pytest.raises(ValueError):
        SynthSpec(shape=(64, 64))


def test_layout_files_and_metadata(dataset: tuple[Path, list[Path]]) -> None:
    out_dir, subject_dirs = dataset
    assert subject_dirs == [out_dir / subject_id(i) for i in range(SPEC.subjects)]
    for i in range(SPEC.subjects):
        for modality in MODALITIES:
            assert _nifti_path(out_dir, i, modality).is_file()
    leftovers = [p for p in out_dir.rglob("*") if p.name.startswith(".") or "tmp" in p.name]
    assert leftovers == []
    metadata = json.loads((out_dir / "synthetic.json").read_text())
    assert metadata["generator_version"] == GENERATOR_VERSION
    assert SynthSpec(**metadata["spec"]) == SPEC
    assert metadata["subject_ids"] == [subject_id(i) for i in range(SPEC.subjects)]


def test_nibabel_reloads_what_was_generated(dataset: tuple[Path, list[Path]]) -> None:
    out_dir, _ = dataset
    expected = generate_subject(1, SPEC)
    for modality, dtype in (("flair", np.float32), ("t1", np.float32), ("seg", np.uint8)):
        image = nib.load(_nifti_path(out_dir, 1, modality))
        data = np.asanyarray(image.dataobj)
        assert data.shape == SPEC.shape
        assert data.dtype == dtype
        np.testing.assert_array_equal(data, expected[modality])
        assert np.allclose(image.header.get_zooms(), 1.0)


def test_arrays_have_shape_dtype_and_brats_labels(subjects) -> None:
    for volumes, _ in subjects:
        assert volumes["flair"].dtype == np.float32 and volumes["t1"].dtype == np.float32
        assert volumes["seg"].dtype == np.uint8
        assert all(v.shape == SPEC.shape for v in volumes.values())
        assert set(np.unique(volumes["seg"]).tolist()) == {0, 1, 2, 4}


def test_same_seed_identical_other_seed_different() -> None:
    first, again = generate_subject(2, SynthSpec(seed=7)), generate_subject(2, SynthSpec(seed=7))
    other = generate_subject(2, SynthSpec(seed=8))
    for modality in MODALITIES:
        assert first[modality].tobytes() == again[modality].tobytes()
        assert first[modality].tobytes() != other[modality].tobytes()
    assert generate_subject(3, SynthSpec(seed=7))["flair"].tobytes() != first["flair"].tobytes()


def test_subject_does_not_depend_on_dataset_size(dataset: tuple[Path, list[Path]], tmp_path: Path) -> None:
    out_dir_5, _ = dataset
    write_dataset(tmp_path, SynthSpec(subjects=3, seed=SPEC.seed))
    assert not (tmp_path / subject_id(3)).exists()
    for i in range(3):
        for modality in MODALITIES:
            small = _nifti_path(tmp_path, i, modality).read_bytes()
            assert small == _nifti_path(out_dir_5, i, modality).read_bytes()


def test_rewrite_replaces_metadata_and_files(tmp_path: Path) -> None:
    spec = SynthSpec(subjects=1, seed=3, shape=(32, 32, 20))
    write_dataset(tmp_path, spec)
    write_dataset(tmp_path, spec)
    assert json.loads((tmp_path / "synthetic.json").read_text())["spec"]["seed"] == 3
    assert sorted(p.name for p in (tmp_path / subject_id(0)).iterdir()) == sorted(f"{subject_id(0)}_{m}.nii.gz" for m in MODALITIES)


def test_background_is_exactly_zero(subjects) -> None:
    for volumes, tissue in subjects:
        flair, t1, seg = volumes["flair"], volumes["t1"], volumes["seg"]
        brain = tissue >= 0
        assert np.array_equal(flair > 0, brain) and np.array_equal(t1 > 0, brain)
        assert np.all(flair >= 0) and np.all(t1 >= 0)
        assert not seg[~brain].any()
        for face in (flair[0], flair[-1], flair[:, 0], flair[:, -1], flair[:, :, 0], flair[:, :, -1]):
            assert not face.any()
        assert 0.2 < brain.mean() < 0.6


def test_brain_shrinks_towards_top_and_bottom(subjects) -> None:
    for volumes, _ in subjects:
        brain_fraction = (volumes["flair"] > 0).mean(axis=(0, 1))
        assert 0.38 < brain_fraction.max() < 0.6
        assert brain_fraction[:3].max() < 0.15 and brain_fraction[-3:].max() < 0.15
        assert 15 <= (brain_fraction > 0.3).sum() <= 30


def test_every_subject_has_tumor_and_healthy_brain_slices(subjects) -> None:
    for volumes, _ in subjects:
        brain_per_slice = (volumes["flair"] > 0).sum(axis=(0, 1))
        tumor_per_slice = (volumes["seg"] > 0).sum(axis=(0, 1))
        kept = brain_per_slice > 0.3 * SPEC.shape[0] * SPEC.shape[1]
        tumor_slices = kept & (tumor_per_slice > 0.01 * brain_per_slice)
        healthy_slices = kept & (tumor_per_slice == 0)
        assert tumor_slices.sum() >= 2 and healthy_slices.sum() >= 2
        # The tumor is nested: necrosis inside the enhancing rim inside edema, all in the brain.
        seg = volumes["seg"]
        assert (seg == 2).sum() > (seg == 4).sum() > 0 and (seg == 1).sum() > 0


def test_tumor_area_per_slice_varies_between_subjects() -> None:
    spec = SynthSpec(subjects=12)
    largest_areas = [(generate_subject(i, spec)["seg"] > 0).sum(axis=(0, 1)).max() for i in range(spec.subjects)]
    assert max(largest_areas) > 3 * min(largest_areas)


def _mean(image: np.ndarray, where: np.ndarray) -> float:
    assert where.any()
    return float(image[where].mean())


def test_flair_contrast(subjects) -> None:
    for volumes, tissue in subjects:
        flair, seg = volumes["flair"], volumes["seg"]
        edema, wm, gm, csf = (
            _mean(flair, seg == 2),
            _mean(flair, tissue == WM),
            _mean(flair, tissue == GM),
            _mean(flair, tissue == CSF),
        )
        assert edema > 1.3 * wm
        assert wm > 1.3 * csf
        assert gm > wm  # grey matter slightly brighter than white matter in FLAIR
        assert edema > _mean(flair, (seg == 1) | (seg == 4))


def test_t1_contrast(subjects) -> None:
    for volumes, tissue in subjects:
        t1, seg = volumes["t1"], volumes["seg"]
        wm, gm, core = _mean(t1, tissue == WM), _mean(t1, tissue == GM), _mean(t1, (seg == 1) | (seg == 4))
        assert wm > 1.2 * gm
        assert gm > core
        assert _mean(t1, seg == 1) < _mean(t1, seg == 4) < wm
        assert core < _mean(t1, seg == 2) < wm  # edema only mildly darker than white matter


def test_modalities_are_not_a_rescaling_of_each_other(subjects) -> None:
    volumes, _ = subjects[0]
    brain = volumes["flair"] > 0
    correlation = np.corrcoef(volumes["flair"][brain], volumes["t1"][brain])[0, 1]
    assert abs(correlation) < 0.8


@pytest.mark.filterwarnings("ignore::FutureWarning")  # MONAI 1.6 Orientationd `labels` default notice
def test_monai_reads_back_ras_with_z_axial(dataset: tuple[Path, list[Path]]) -> None:
    from monai.transforms import Compose, EnsureChannelFirstd, LoadImaged, Orientationd

    out_dir, _ = dataset
    keys = ["flair", "seg"]
    load = Compose([LoadImaged(keys=keys), EnsureChannelFirstd(keys=keys), Orientationd(keys=keys, axcodes="RAS")])
    loaded = load({key: str(_nifti_path(out_dir, 0, key)) for key in keys})
    original = generate_subject(0, SPEC)
    for key in keys:
        assert tuple(loaded[key].shape) == (1, *SPEC.shape)
    seg = np.asarray(loaded["seg"][0])
    assert (seg > 0).sum() == (original["seg"] > 0).sum()
    # z (axial) untouched, x and y flipped from the stored LPS-like order to RAS.
    np.testing.assert_array_equal(seg, original["seg"][::-1, ::-1, :])
    np.testing.assert_allclose(np.asarray(loaded["flair"][0]), original["flair"][::-1, ::-1, :])
