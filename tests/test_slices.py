"""MONAI reading of real NIfTI files into labelled axial slices."""

import nibabel as nib
import numpy as np
import pytest

from benchbias.data import DataError
from benchbias.data.cases import load_case_slices
from benchbias.data.slice_cache import prepare_slices
from benchbias.data.slice_set import SliceSet
from benchbias.foundation.config import SliceConfig
from benchbias.foundation.registry import load_registry

SHAPE = (32, 32, 8)
# Per axial slice z: brain voxels and tumor voxels (the slice has 1024 voxels).
BRAIN = [200, 512, 512, 512, 512, 512, 512, 300]
TUMOR = [0, 0, 2, 30, 0, 100, 6, 0]
# Expected with min_brain_fraction 0.30 and min_tumor_fraction 0.01:
# z=0 brain 19.5% dropped; z=2 tumor 0.39% of brain is ambiguous (dropped); z=6 1.17% is tumor;
# z=7 brain 29.3% dropped.
KEPT = [1, 3, 4, 5, 6]
IS_TUMOR = [False, True, False, True, True]


def write_case(root, case_id="Case_001", label_value=2, shape=SHAPE, seg_shape=None):
    folder = root / case_id
    folder.mkdir(parents=True)
    brain = np.zeros(shape, bool)
    seg = np.zeros(shape, np.uint8)
    for z, (b, t) in enumerate(zip(BRAIN, TUMOR)):
        brain[..., z].flat[:b] = True
        seg[..., z].flat[:t] = label_value
    rng = np.random.default_rng(0)
    flair = np.where(brain, 100 + 10 * rng.random(shape), 0).astype(np.float32)
    t1 = np.where(brain, 200 + 10 * rng.random(shape), 0).astype(np.float32)
    flair[seg > 0] = 400  # bright tumor in FLAIR
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    nib.save(nib.Nifti1Image(flair, affine), folder / f"{case_id}_flair.nii.gz")
    nib.save(nib.Nifti1Image(t1, affine), folder / f"{case_id}_t1.nii.gz")
    seg_data = seg if seg_shape is None else np.zeros(seg_shape, np.uint8)
    nib.save(nib.Nifti1Image(seg_data, affine), folder / f"{case_id}_seg.nii.gz")
    return folder


@pytest.fixture
def layout():
    return load_registry().get("dataset", "brats2018").cls()


def test_slice_labelling_on_a_hand_built_volume(tmp_path, layout):
    write_case(tmp_path)
    case = layout.cases(tmp_path, ("flair", "t1"))[0]
    slices = load_case_slices(case, layout, "flair", "t1", SliceConfig(image_size=16))
    assert slices.slice_index.tolist() == KEPT
    assert slices.is_tumor.tolist() == IS_TUMOR
    np.testing.assert_allclose(slices.brain_fraction, [BRAIN[z] / 1024 for z in KEPT], rtol=1e-6)
    np.testing.assert_allclose(slices.tumor_fraction, [TUMOR[z] / BRAIN[z] for z in KEPT], rtol=1e-6)
    assert slices.source.shape == slices.target.shape == slices.tumor_mask.shape == (5, 16, 16)
    assert slices.source.min() >= 0.0 and slices.source.max() <= 1.0
    assert slices.tumor_mask[3].sum() > 0 and slices.tumor_mask[0].sum() == 0
    assert set(slices.case_id) == {"Case_001"}


def test_thresholds_are_options(tmp_path, layout):
    write_case(tmp_path)
    case = layout.cases(tmp_path, ("flair", "t1"))[0]
    keep_all = load_case_slices(case, layout, "flair", "t1", SliceConfig(image_size=16, min_brain_fraction=0.1, drop_ambiguous=False))
    assert keep_all.slice_index.tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    assert keep_all.is_tumor.tolist() == [False, False, False, True, False, True, True, False]
    strict = load_case_slices(case, layout, "flair", "t1", SliceConfig(image_size=16, min_tumor_fraction=0.05))
    assert strict.slice_index.tolist() == [1, 3, 4, 5]  # z=6 (1.2%) is now ambiguous


def test_prepared_slices_are_cached_and_reloaded(tmp_path, layout):
    write_case(tmp_path / "data", "A")
    write_case(tmp_path / "data", "B")
    options = SliceConfig(image_size=16)
    prepared = prepare_slices(tmp_path / "data", layout, "flair", "t1", options, tmp_path / "cache")
    first, key = prepared.slices, prepared.cache_key
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    prepared = prepare_slices(tmp_path / "data", layout, "flair", "t1", options, tmp_path / "cache")
    again, key2 = prepared.slices, prepared.cache_key
    assert key == key2 and len(first) == len(again) == 10
    np.testing.assert_array_equal(first.source, again.source)
    assert isinstance(SliceSet.load(next((tmp_path / "cache").glob("*.npz"))), SliceSet)


def test_missing_modality_file(tmp_path, layout):
    folder = write_case(tmp_path)
    (folder / "Case_001_t1.nii.gz").unlink()
    with pytest.raises(DataError, match=r"case Case_001: missing file .*Case_001_t1.nii.gz"):
        layout.cases(tmp_path, ("flair", "t1"))


def test_unexpected_label_values(tmp_path, layout):
    write_case(tmp_path, label_value=7)
    case = layout.cases(tmp_path, ("flair", "t1"))[0]
    with pytest.raises(DataError, match=r"case Case_001: .*Case_001_seg.nii.gz: label map has unexpected values \[7\]"):
        load_case_slices(case, layout, "flair", "t1", SliceConfig(image_size=16))


def test_shape_mismatch(tmp_path, layout):
    write_case(tmp_path, seg_shape=(32, 32, 9))
    case = layout.cases(tmp_path, ("flair", "t1"))[0]
    with pytest.raises(DataError, match=r"case Case_001: modalities have different shapes: .*Case_001_seg.nii.gz \(label\) is \(32, 32, 9\)"):
        load_case_slices(case, layout, "flair", "t1", SliceConfig(image_size=16))


def test_corrupt_file(tmp_path, layout):
    folder = write_case(tmp_path)
    (folder / "Case_001_flair.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    case = layout.cases(tmp_path, ("flair", "t1"))[0]
    with pytest.raises(DataError, match=r"case Case_001: .*Case_001_flair.nii.gz: cannot read"):
        load_case_slices(case, layout, "flair", "t1", SliceConfig(image_size=16))
