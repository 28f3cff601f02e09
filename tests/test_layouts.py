"""Every data layout on tiny fixture folders written here (real NIfTI through nibabel, real MetaImage
through ITK): file matching, label rules, auto-detection, and the slice options on hand-built volumes."""

import json

import itk
import nibabel as nib
import numpy as np
import pytest

from benchbias.data import DataError
from benchbias.data.cases import load_case_slices
from benchbias.data.slice_cache import prepare_slices
from benchbias.data.sources import detect_layout
from benchbias.foundation.config import SliceConfig
from benchbias.foundation.registry import load_registry

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # SWIG types inside itk

REGISTRY = load_registry()
SHAPE = (24, 24, 8)  # x, y, z
# Per axial slice z: is there brain (a 16 x 20 block = 320 of 576 voxels, 55.6%) and tumor (a 4 x 5 block, 6.25% of it)?
BRAIN = [False, True, True, True, True, True, True, False]
TUMOR = [False, False, True, True, False, False, True, False]
KEPT = [1, 2, 3, 4, 5, 6]
IS_TUMOR = [False, True, True, False, False, True]
RAS = np.diag([1.0, 1.0, 1.0, 1.0])


def volumes(scale=1.0, tumor_x=slice(16, 20), seed=0):
    """Images (flair, t1, t1ce, t2), the brain and tumor masks, on SHAPE; the tumor sits at x 16..19."""
    brain = np.zeros(SHAPE, bool)
    tumor = np.zeros(SHAPE, bool)
    for z in range(SHAPE[2]):
        if BRAIN[z]:
            brain[4:20, 2:22, z] = True
        if TUMOR[z]:
            tumor[tumor_x, 8:13, z] = True
    rng = np.random.default_rng(seed)
    images = {}
    for i, modality in enumerate(("flair", "t1", "t1ce", "t2")):
        image = np.where(brain, (100 + 50 * i + 20 * rng.random(SHAPE)) * scale, 0).astype(np.float32)
        image[tumor] = (400 if modality == "flair" else 40) * scale
        images[modality] = image
    return images, brain, tumor


def tumor_labels(tumor, values):
    """A tumor label map using ``values`` in turn along x (e.g. 1, 2, 4 for BraTS 2018)."""
    label = np.zeros(SHAPE, np.uint8)
    xs = np.flatnonzero(tumor.any(axis=(1, 2)))
    for j, x in enumerate(xs):
        label[x][tumor[x]] = values[j % len(values)]
    return label


def save_nifti(array, path, affine=RAS):
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(array, affine), path)


def save_mha(array, path, spacing=(1.0, 1.0, 1.0)):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = itk.image_from_array(np.ascontiguousarray(np.asarray(array).transpose(2, 1, 0)))  # ITK arrays are z, y, x
    image.SetSpacing(list(spacing))
    itk.imwrite(image, str(path), compression=True)


def write_brats2018(root, case="BraTS_001", label_values=(1, 2, 4), affine=RAS, scale=1.0, tumor_x=slice(16, 20)):
    images, _, tumor = volumes(scale, tumor_x)
    folder = root / case
    for modality in ("flair", "t1", "t1ce", "t2"):
        save_nifti(images[modality], folder / f"{case}_{modality}.nii.gz", affine)
    save_nifti(tumor_labels(tumor, label_values), folder / f"{case}_seg.nii.gz", affine)
    return folder


def write_brats2023(root, case="BraTS-GLI-00001-000"):
    images, _, tumor = volumes()
    folder = root / case
    for modality, token in (("flair", "t2f"), ("t1", "t1n"), ("t1ce", "t1c"), ("t2", "t2w")):
        save_nifti(images[modality], folder / f"{case}-{token}.nii.gz")
    save_nifti(tumor_labels(tumor, (1, 2, 3)), folder / f"{case}-seg.nii.gz")
    return folder


MSD_CHANNELS = {"0": "T1w", "1": "FLAIR", "2": "t1gd", "3": "T2w"}  # not Task01's order: the order must come from dataset.json


def write_msd(root, cases=("BRATS_001", "BRATS_002"), channels=MSD_CHANNELS):
    images, _, tumor = volumes()
    names = {"flair": "flair", "t1w": "t1", "t1gd": "t1ce", "t2w": "t2"}
    stack = np.stack([images[names[channels[str(c)].lower()]] for c in range(len(channels))], axis=-1)
    training = []
    for case in cases:
        save_nifti(stack, root / "imagesTr" / f"{case}.nii.gz")
        save_nifti(tumor_labels(tumor, (1, 2, 3)), root / "labelsTr" / f"{case}.nii.gz")
        training.append({"image": f"./imagesTr/{case}.nii.gz", "label": f"./labelsTr/{case}.nii.gz"})
    (root / "imagesTr" / f"._{cases[0]}.nii.gz").write_bytes(b"\x00\x05\x16\x07 AppleDouble junk")
    meta = {
        "name": "BRATS",
        "tensorImageSize": "4D",
        "modality": channels,
        "labels": {"0": "background", "1": "edema", "2": "non-enhancing tumor", "3": "enhancing tumor"},
        "numTraining": len(cases),
        "training": training,
        "test": [],
    }
    (root / "dataset.json").write_text(json.dumps(meta))
    return root


def write_brats2013(case_folder, simulated=True, n4=True, start=100, skull=False):
    """A BRATS2013 case folder as distributed: one VSD.* folder per file.

    Simulated cases label healthy tissue (1, 2) and tumor (3..6) in the *5more* map, and also carry a
    Brain_1more tumor-only map; ``skull`` puts non-zero intensities outside the brain so that the
    brain can only come from the label map. With ``n4`` every modality also has an N4ITK file whose
    intensities are doubled (so the tests can tell which one was read)."""
    images, brain, tumor = volumes()
    ids = iter(range(start, start + 20))
    for modality, token in (("flair", "Flair"), ("t1", "T1"), ("t1ce", "T1c"), ("t2", "T2")):
        image = images[modality].copy()
        if skull:
            image[~brain] = 30
        name = f"VSD.Brain.XX.O.MR_{token}.{next(ids)}"
        save_mha(image.astype(np.int16), case_folder / name / f"{name}.mha")
        if n4:
            save_mha((2 * image).astype(np.float32), case_folder / name / f"{name}.N4ITK.mha")
    if simulated:
        label = np.where(brain, 1, 0).astype(np.uint8)
        label[brain & (np.indices(SHAPE)[0] % 2 == 0)] = 2  # two healthy tissue classes
        label[tumor] = 3
        label[tumor & (np.indices(SHAPE)[1] == 10)] = 5
        name = f"VSD.Gray_matter_of_neuraxis_5more.XX.O.OT.{next(ids)}"
        save_mha(label, case_folder / name / f"{name}.mha")
        name = f"VSD.Brain_1more.XX.O.OT.{next(ids)}"
        save_mha(np.where(tumor, 2, 0).astype(np.uint8), case_folder / name / f"{name}.mha")
    else:
        name = f"VSD.Brain_3more.XX.XX.OT.{next(ids)}"
        save_mha(tumor_labels(tumor, (1, 2, 3, 4)), case_folder / name / f"{name}.mha")
    return case_folder


def layout(name):
    return REGISTRY.get("dataset", name).cls()


SMALL = SliceConfig(image_size=24)


def slices_of(root, name, options=SMALL, modalities=("flair", "t1")):
    lay = layout(name)
    cases = lay.cases(root, modalities)
    return cases, [load_case_slices(c, lay, *modalities, options) for c in cases]


# ---- each layout: files, modality mapping, label rule ----------------------------------------


def test_brats2018_reads_with_its_label_rule(tmp_path):
    write_brats2018(tmp_path, "B1")
    (cases, [s]) = slices_of(tmp_path, "brats2018", modalities=("flair", "t1ce"))
    assert cases[0].images["t1ce"].name == "B1_t1ce.nii.gz"
    assert s.slice_index.tolist() == KEPT and s.is_tumor.tolist() == IS_TUMOR
    np.testing.assert_allclose(s.brain_fraction, 320 / 576, rtol=1e-6)
    np.testing.assert_allclose(s.tumor_fraction[np.array(IS_TUMOR)], 20 / 320, rtol=1e-6)


def test_brats2018_grade_folders_and_uncompressed_nifti(tmp_path):
    write_brats2018(tmp_path / "HGG", "H1")
    folder = write_brats2018(tmp_path / "LGG", "L1")
    for f in folder.glob("*_t1.nii.gz"):
        nib.save(nib.load(f), folder / "L1_t1.nii")
        f.unlink()
    cases = layout("brats2018").cases(tmp_path, ("flair", "t1"))
    assert [c.case_id for c in cases] == ["H1", "L1"] and cases[1].images["t1"].name == "L1_t1.nii"


def test_brats2023_maps_canonical_names_to_its_files(tmp_path):
    write_brats2023(tmp_path)
    cases, [s] = slices_of(tmp_path, "brats2023", modalities=("flair", "t1"))
    assert cases[0].images["flair"].name.endswith("-t2f.nii.gz") and cases[0].images["t1"].name.endswith("-t1n.nii.gz")
    assert s.is_tumor.tolist() == IS_TUMOR
    own = layout("brats2023").cases(tmp_path, ("t2f", "t1c"))[0]
    assert own.images["t1c"].name.endswith("-t1c.nii.gz")
    with pytest.raises(DataError, match="layout brats2023 has no modality 'pd'"):
        layout("brats2023").cases(tmp_path, ("pd", "t1"))


def test_brats2023_label_4_is_unexpected(tmp_path):
    folder = write_brats2023(tmp_path, "C")
    images, _, tumor = volumes()
    save_nifti(tumor_labels(tumor, (1, 4)), folder / "C-seg.nii.gz")
    lay = layout("brats2023")
    with pytest.raises(DataError, match=r"case C: .*C-seg.nii.gz: label map has unexpected values \[4\] \(expected \[0, 1, 2, 3\]\)"):
        load_case_slices(lay.cases(tmp_path, ("flair", "t1"))[0], lay, "flair", "t1", SliceConfig(image_size=24))


def test_msd_channels_come_from_dataset_json(tmp_path):
    write_msd(tmp_path)
    lay = layout("msd-task01")
    cases = lay.cases(tmp_path, ("flair", "t1"))
    assert [c.case_id for c in cases] == ["BRATS_001", "BRATS_002"]  # the ._ AppleDouble file is ignored
    assert cases[0].images["flair"][1] == 1 and cases[0].images["t1"][1] == 0  # FLAIR is channel 1 here
    assert lay.cases(tmp_path, ("t1gd", "T2w"))[0].images["t1gd"][1] == 2  # dataset.json's own names work too
    s = load_case_slices(cases[0], lay, "flair", "t1", SliceConfig(image_size=24))
    assert s.is_tumor.tolist() == IS_TUMOR
    # FLAIR (tumor bright) and T1 (tumor dark) really are those channels of the 4-D file
    assert s.source[1][s.tumor_mask[1]].mean() > s.source[1][~s.tumor_mask[1] & (s.source[1] > 0)].mean()
    assert s.target[1][s.tumor_mask[1]].mean() < s.target[1][~s.tumor_mask[1] & (s.target[1] > 0)].mean()


def test_msd_unknown_channel_and_label(tmp_path):
    write_msd(tmp_path / "a", channels={"0": "FLAIR", "1": "T2w"})
    with pytest.raises(DataError, match=r"dataset.json: no channel for modality 't1' \(channels: 0: FLAIR, 1: T2w\)"):
        layout("msd-task01").cases(tmp_path / "a", ("flair", "t1"))
    meta_path = write_msd(tmp_path / "b") / "dataset.json"
    meta = json.loads(meta_path.read_text())
    del meta["labels"]["3"]  # the label maps hold 3, which this dataset.json does not name
    meta_path.write_text(json.dumps(meta))
    lay = layout("msd-task01")
    case = lay.cases(tmp_path / "b", ("flair", "t1"))[0]
    with pytest.raises(DataError, match=r"case BRATS_001: \S*labelsTr/BRATS_001.nii.gz: label map has unexpected values \[3\] \(expected \[0, 1, 2\]\)"):
        load_case_slices(case, lay, "flair", "t1", SliceConfig(image_size=24))


@pytest.mark.slow
def test_brats2013_simulated_case_prefers_n4itk_and_uses_the_label_rule(tmp_path):
    write_brats2013(tmp_path / "Synthetic_Data" / "HG" / "0001", skull=True)
    cases, [s] = slices_of(tmp_path, "brats2013", SliceConfig(image_size=24, normalization="max"))
    case = cases[0]
    assert case.case_id == "Synthetic_Data/HG/0001"
    assert all("N4ITK" in p.name for p in case.images.values())
    assert "5more" in case.label.name  # the complete (tissue + tumor) map, not the Brain_1more one
    # brain = label != 0 (the skull is bright, so the images alone would say "all brain"); tumor = label > 2
    assert s.slice_index.tolist() == KEPT and s.is_tumor.tolist() == IS_TUMOR
    np.testing.assert_allclose(s.brain_fraction, 320 / 576, rtol=1e-6)


def test_brats2013_real_case_uses_brats_labels(tmp_path):
    write_brats2013(tmp_path / "Image_Data" / "LG" / "0002", simulated=False, n4=False)
    cases, [s] = slices_of(tmp_path / "Image_Data", "brats2013")
    assert cases[0].case_id == "LG/0002" and "3more" in cases[0].label.name
    assert s.is_tumor.tolist() == IS_TUMOR


def test_brats2013_mha_is_read_by_monais_itk_reader(tmp_path):
    from monai.data import ITKReader, NibabelReader
    from monai.transforms import LoadImage

    loader = LoadImage()
    chosen = {suffix: next(r for r in loader.readers[::-1] if r.verify_suffix(f"x{suffix}")) for suffix in (".mha", ".nii.gz")}
    assert isinstance(chosen[".mha"], ITKReader) and isinstance(chosen[".nii.gz"], NibabelReader)
    write_brats2013(tmp_path / "HG" / "0001", n4=False)
    _, [s] = slices_of(tmp_path, "brats2013", SliceConfig(image_size=24, normalization="max"))
    assert s.source.max() == pytest.approx(1.0)


def test_brats2013_ambiguous_files_are_named(tmp_path):
    folder = write_brats2013(tmp_path / "HG" / "0001", n4=False)
    extra = folder / "VSD.Brain.XX.O.MR_T1.999" / "VSD.Brain.XX.O.MR_T1.999.mha"
    save_mha(np.zeros(SHAPE, np.int16), extra)
    with pytest.raises(DataError, match=r"case HG/0001: ambiguous MR_T1 files: .*MR_T1\.10\d\.mha, .*MR_T1\.999\.mha"):
        layout("brats2013").cases(tmp_path, ("flair", "t1"))
    assert layout("brats2013").cases(tmp_path, ("flair", "t1ce"))  # T1c is not T1


def test_brats2013_label_values_are_checked(tmp_path):
    folder = write_brats2013(tmp_path / "HG" / "0001", simulated=False, n4=False)
    label = next(folder.glob("VSD.Brain_3more*/*.mha"))
    save_mha(np.full(SHAPE, 9, np.uint8), label)
    lay = layout("brats2013")
    with pytest.raises(DataError, match=r"case HG/0001: .*3more.*: label map has unexpected values \[9\]"):
        load_case_slices(lay.cases(tmp_path, ("flair", "t1"))[0], lay, "flair", "t1", SliceConfig(image_size=24))


# ---- auto-detection -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, write",
    [
        ("brats2018", lambda root: write_brats2018(root, "B1")),
        ("brats2023", lambda root: write_brats2023(root)),
        ("msd-task01", lambda root: write_msd(root)),
        ("brats2013", lambda root: write_brats2013(root / "Synthetic_Data" / "HG" / "0001", n4=False)),
    ],
)
def test_each_layout_is_detected(tmp_path, name, write):
    write(tmp_path)
    assert detect_layout(tmp_path, REGISTRY).name == name


def test_unknown_and_ambiguous_folders_are_errors(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    with pytest.raises(DataError, match=r"matches no known data layout \(known: brats2013, brats2018, brats2023, msd-task01"):
        detect_layout(tmp_path, REGISTRY)
    write_brats2018(tmp_path, "B1")
    write_brats2023(tmp_path)
    with pytest.raises(DataError, match=r"matches several data layouts \(brats2018, brats2023\)"):
        detect_layout(tmp_path, REGISTRY)


# ---- slice options on hand-built volumes ------------------------------------------------------


@pytest.mark.parametrize("affine, right_is", [(RAS, "high x"), (np.diag([-1.0, 1.0, 1.0, 1.0]), "low x")])
def test_half_keeps_the_patients_left_or_right(tmp_path, affine, right_is):
    """The tumor sits at array x 16..19: the patient's right in a RAS file, the left in an LAS one."""
    write_brats2018(tmp_path, "B1", affine=affine)
    lay = layout("brats2018")
    case = lay.cases(tmp_path, ("flair", "t1"))[0]
    tumors = {}
    for half in ("left", "right"):
        s = load_case_slices(case, lay, "flair", "t1", SliceConfig(image_size=24, half=half))
        assert s.source.shape[1:] == (24, 24)
        # brain spans x 4..19: 8 columns of it in the left half (4..11), 8 in the right (12..19)
        np.testing.assert_allclose(s.brain_fraction, (8 * 20) / (12 * 24), rtol=1e-6)
        tumors[half] = int(s.is_tumor.sum())
    tumor_half = "right" if right_is == "high x" else "left"
    other = "left" if tumor_half == "right" else "right"
    assert tumors[tumor_half] == 3 and tumors[other] == 0


def test_half_of_a_metaimage_follows_its_lps_header(tmp_path):
    """ITK reads MetaImage in LPS: array x runs to the patient's left, so x 16..19 is the left half."""
    write_brats2013(tmp_path / "HG" / "0001", simulated=False, n4=False)
    lay = layout("brats2013")
    case = lay.cases(tmp_path, ("flair", "t1"))[0]
    left = load_case_slices(case, lay, "flair", "t1", SliceConfig(image_size=24, half="left"))
    right = load_case_slices(case, lay, "flair", "t1", SliceConfig(image_size=24, half="right"))
    assert left.is_tumor.sum() == 3 and right.is_tumor.sum() == 0


def test_normalisations(tmp_path):
    write_brats2018(tmp_path, "A", scale=1.0)
    write_brats2018(tmp_path, "B", scale=4.0)
    lay = layout("brats2018")
    options = SliceConfig(image_size=24, normalization="max")
    per_volume = [load_case_slices(c, lay, "flair", "t1", options) for c in lay.cases(tmp_path, ("flair", "t1"))]
    assert [p.source.max() for p in per_volume] == [pytest.approx(1.0), pytest.approx(1.0)]
    np.testing.assert_allclose(per_volume[0].source, per_volume[1].source, atol=1e-6)  # same anatomy, 4x the gain
    prepared = prepare_slices(tmp_path, lay, "flair", "t1", SliceConfig(image_size=24, normalization="dataset_max"), progress=False)
    s = prepared.slices
    a, b = s.case_id == "A", s.case_id == "B"
    assert s.source[b].max() == pytest.approx(1.0) and s.source[a].max() == pytest.approx(0.25)
    assert s.target[b].max() == pytest.approx(1.0) and s.target[a].max() == pytest.approx(0.25)
    assert prepared.meta["dataset_max"] == {"flair": pytest.approx(1600.0), "t1": pytest.approx(4 * 170, rel=0.03)}
    percentile = load_case_slices(lay.cases(tmp_path, ("flair", "t1"))[0], lay, "flair", "t1", SliceConfig(image_size=24))
    assert percentile.source.max() == pytest.approx(1.0) and percentile.source.min() == 0.0
