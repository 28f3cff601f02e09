"""``benchbias data prepare``: bad data gets one line naming the case and file (exit 2), ``--skip-bad``
goes on and records what it left out, the prepared-slice cache is reused while its files are
unchanged and rebuilt when one changes, and the split options of the paper's protocol."""

import gzip
import os
import re

import nibabel as nib
import numpy as np
import pytest
import yaml
from support import REPO, run_cli
from test_layouts import SHAPE, save_nifti, volumes, write_brats2013, write_brats2018

from benchbias.cli import main
from benchbias.data import DataError
from benchbias.data.protocol import ProtocolError, split_subjects
from benchbias.data.slice_cache import cache_meta, prepare_slices
from benchbias.data.slice_set import SliceSet
from benchbias.data.sources import benchmark_data
from benchbias.foundation.benchmark_files import load_benchmark
from benchbias.foundation.config import DatasetConfig, DomainConfig, SliceConfig, SplitConfig
from benchbias.foundation.registry import load_registry

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # SWIG types inside itk

REGISTRY = load_registry()


def prepare_cli(capsys, *args):
    """``benchbias data prepare ...`` in this process (the same entry point as the console script)."""
    code = main(["data", "prepare", *map(str, args), "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


# ---- bad data: one line naming the case and the file, exit 2 -----------------------------------


def truncated_gzip(root):
    path = write_brats2018(root, "Z") / "Z_flair.nii.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return r"case Z: \S*/Z/Z_flair.nii.gz: cannot read \(\w+"


def not_gzip_at_all(root):
    (write_brats2018(root, "Z") / "Z_t1.nii.gz").write_bytes(b"\x1f\x8b not really gzip")
    return r"case Z: \S*/Z/Z_t1.nii.gz: cannot read \("


def corrupt_mha(root):
    write_brats2013(root / "HG" / "0001", n4=False)
    folder = write_brats2013(root / "HG" / "0002", n4=False)
    path = next(folder.glob("VSD.Brain.XX.O.MR_T1.*/*.mha"))
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"ElementDataFile = LOCAL") + 30])  # the header, and a few bytes of data
    return r"case HG/0002: \S*/HG/0002/VSD.Brain.XX.O.MR_T1.\d+/VSD.Brain.XX.O.MR_T1.\d+.mha: cannot read \(RuntimeError: .*not read completely"


def missing_modality(root):
    (write_brats2018(root, "Z") / "Z_t1.nii.gz").unlink()
    return (
        r"case Z: missing file \S*/Z/Z_t1.nii.gz; to leave unusable cases out, prepare once with: benchbias data prepare \S+ --benchmark BENCHMARK --skip-bad$"
    )


def shape_mismatch(root):
    folder = write_brats2018(root, "Z")
    save_nifti(np.zeros((24, 24, 9), np.uint8), folder / "Z_seg.nii.gz")
    return r"case Z: modalities have different shapes: \S*/Z/Z_seg.nii.gz \(label\) is \(24, 24, 9\), \S*/Z/Z_flair.nii.gz \(flair\) is \(24, 24, 8\)"


def affine_mismatch(root):
    folder = write_brats2018(root, "Z")
    moved = np.eye(4)
    moved[0, 3] = 2.0
    save_nifti(volumes()[0]["t1"], folder / "Z_t1.nii.gz", moved)
    return r"case Z: modalities have different affines: \S*/Z/Z_t1.nii.gz \(t1\) differs from \S*/Z/Z_flair.nii.gz \(flair\) by up to 2 "


def unexpected_labels(root):
    folder = write_brats2018(root, "Z")
    label = np.asarray(nib.load(folder / "Z_seg.nii.gz").dataobj)
    save_nifti(np.where(label > 0, 7, 0).astype(np.uint8), folder / "Z_seg.nii.gz")
    return r"case Z: \S*/Z/Z_seg.nii.gz: label map has unexpected values \[7\] \(expected \[0, 1, 2, 4\]\)"


def empty_case_folder(root):
    (root / "Z").mkdir()
    return r"case Z: missing file \S*/Z/Z_flair.nii.gz; to leave unusable cases out"


BAD = [truncated_gzip, not_gzip_at_all, corrupt_mha, missing_modality, shape_mismatch, affine_mismatch, unexpected_labels, empty_case_folder]


@pytest.mark.parametrize("make_bad", BAD, ids=lambda f: f.__name__)
def test_bad_case_is_one_line_naming_case_and_file(tmp_path, capsys, make_bad):
    data = tmp_path / "data"
    if make_bad is not corrupt_mha:
        write_brats2018(data, "A")
    expected = make_bad(data)
    code, out, err = prepare_cli(capsys, data, "--out", tmp_path / "cache")
    assert code == 2, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("benchbias: error: ")
    assert re.search(expected, lines[0]), lines[0]
    assert not list((tmp_path / "cache").rglob("*.npz"))  # nothing half-prepared is left behind


def test_empty_and_missing_folders(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = prepare_cli(capsys, tmp_path / "empty")
    assert code == 2 and err.strip() == (
        f"benchbias: error: {tmp_path / 'empty'}: matches no known data layout (known: brats2013, brats2018, brats2023, "
        "msd-task01); name one with dataset.layout in the benchmark file (or data prepare --layout)"
    )
    code, _, err = prepare_cli(capsys, tmp_path / "empty", "--layout", "brats2018")
    assert code == 2 and err.strip() == f"benchbias: error: {tmp_path / 'empty'}: no cases found for layout 'brats2018'"
    code, _, err = prepare_cli(capsys, tmp_path / "nowhere")
    assert code == 2 and err.strip() == f"benchbias: error: {tmp_path / 'nowhere'}: data folder does not exist"


@pytest.mark.slow
def test_bad_data_through_the_console_script(tmp_path):
    write_brats2018(tmp_path / "data", "A")
    truncated_gzip(tmp_path / "data")
    result = run_cli("data", "prepare", str(tmp_path / "data"), "--out", str(tmp_path / "cache"), "--no-progress")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "case Z: " in result.stderr and "Z_flair.nii.gz: cannot read" in result.stderr


# ---- --skip-bad ----------------------------------------------------------------------------------


def bad_folder(root):
    """Two good cases and one case of every kind of bad NIfTI data."""
    write_brats2018(root, "A")
    write_brats2018(root, "B")
    expected = {}
    for i, make_bad in enumerate(f for f in BAD if f is not corrupt_mha):
        scratch = root.parent / f"scratch{i}"
        scratch.mkdir()
        make_bad(scratch)
        (scratch / "Z").rename(root / f"Z{i}")
        for path in (root / f"Z{i}").iterdir():
            path.rename(path.with_name(path.name.replace("Z_", f"Z{i}_")))
        expected[f"Z{i}"] = make_bad.__name__
    return expected


def test_skip_bad_goes_on_lists_every_skip_and_records_them(tmp_path, capsys, monkeypatch):
    expected = bad_folder(tmp_path / "data")
    cache = tmp_path / "cache"
    code, out, err = prepare_cli(capsys, tmp_path / "data", "--out", cache, "--skip-bad")
    assert code == 0, err
    assert "cases:    2 read, 7 skipped" in out
    skipped_lines = [line.strip() for line in out.splitlines() if line.strip().startswith("skipped case")]
    assert [line.split(":")[0] for line in skipped_lines] == [f"skipped case {case}" for case in sorted(expected)]
    assert "slices:   12 kept: 6 tumor, 6 healthy" in out
    (npz,) = cache.glob("slices/*.npz")
    meta = cache_meta(npz)
    assert [case for case, _ in meta["skipped"]] == sorted(expected) and meta["cases"] == ["A", "B"]
    assert "Z5_seg.nii.gz: label map has unexpected values [7]" in dict(meta["skipped"])["Z5"]
    # without --skip-bad, the cache that recorded the skips is reused rather than failing
    code, out, err = prepare_cli(capsys, tmp_path / "data", "--out", cache)
    assert code == 0 and "(reused, " in out and "7 skipped" in out
    # and so does `benchbias run` (benchmark_data), noting the skips in one line
    monkeypatch.setenv("BENCHBIAS_CACHE", str(cache))
    data = benchmark_data(DatasetConfig(path=str(tmp_path / "data"), layout="brats2018"), SliceConfig(), REGISTRY, progress=False)
    assert len(data.slices) == 12 and [case for case, _ in data.skipped] == sorted(expected)
    note = capsys.readouterr().err.strip().splitlines()
    assert len(note) == 1 and note[0].startswith("benchbias: note: 7 case(s) were skipped when these slices were prepared: Z0; Z1;")


@pytest.mark.slow
def test_skip_bad_through_the_console_script(tmp_path):
    write_brats2018(tmp_path / "data", "A")
    missing_modality(tmp_path / "data")
    result = run_cli("data", "prepare", str(tmp_path / "data"), "--out", str(tmp_path / "cache"), "--skip-bad", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "cases:    1 read, 1 skipped" in result.stdout and "skipped case Z: missing file" in result.stdout


# ---- the cache ---------------------------------------------------------------------------------


def test_cache_is_reused_while_files_are_unchanged_and_rebuilt_when_one_changes(tmp_path, monkeypatch):
    data, cache = tmp_path / "data", tmp_path / "cache"
    write_brats2018(data, "A")
    write_brats2018(data, "B")
    layout = REGISTRY.get("dataset", "brats2018").cls()
    options = SliceConfig(image_size=24)
    first = prepare_slices(data, layout, "flair", "t1", options, cache, progress=False)
    assert first.status == "built" and first.summary == {"cases": 2, "skipped": 0, "slices": 12, "tumor": 6, "healthy": 6}

    import benchbias.data.slice_cache as slices_module

    real_read = slices_module.read_case
    monkeypatch.setattr(slices_module, "read_case", lambda *a, **k: pytest.fail("a matching cache must not be re-read"))
    again = prepare_slices(data, layout, "flair", "t1", options, cache, progress=False)
    assert again.status == "reused" and again.cache_key == first.cache_key
    np.testing.assert_array_equal(again.slices.source, first.slices.source)
    monkeypatch.setattr(slices_module, "read_case", real_read)

    seg = data / "B" / "B_seg.nii.gz"
    stat = seg.stat()
    os.utime(seg, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))  # touched: same bytes, new mtime
    touched = prepare_slices(data, layout, "flair", "t1", options, cache, progress=False)
    assert touched.status == "rebuilt" and touched.cache_key != first.cache_key
    assert sorted(p.name for p in cache.glob("*.npz")) == [f"slices-{touched.cache_key[:16]}.npz"]  # the stale one is gone

    save_nifti(np.zeros(SHAPE, np.uint8), seg)  # modified: B has no tumor any more
    modified = prepare_slices(data, layout, "flair", "t1", options, cache, progress=False)
    assert modified.status == "rebuilt" and modified.summary["tumor"] == 3

    other = prepare_slices(data, layout, "flair", "t1", SliceConfig(image_size=16), cache, progress=False)
    assert other.status == "built" and len(list(cache.glob("*.npz"))) == 2  # other options: another cache, both kept

    (cache / f"slices-{other.cache_key[:16]}.npz").write_bytes(b"PK\x03\x04 truncated")
    assert prepare_slices(data, layout, "flair", "t1", SliceConfig(image_size=16), cache, progress=False).status == "rebuilt"


def test_dataset_fingerprint_is_the_same_for_a_copy_elsewhere_and_changes_with_the_data(tmp_path):
    """The leaderboard's dataset fingerprint: independent of folder, cache and mtimes (unlike the
    cache key), sensitive to which files there are, their size, and the slice options."""
    import shutil

    layout = REGISTRY.get("dataset", "brats2018").cls()
    options = SliceConfig(image_size=24)
    here = tmp_path / "here" / "BraTS"
    write_brats2018(here, "A")
    write_brats2018(here, "B")
    there = shutil.copytree(here, tmp_path / "elsewhere" / "copy")  # new paths and mtimes
    a = prepare_slices(here, layout, "flair", "t1", options, tmp_path / "cache-a", progress=False)
    b = prepare_slices(there, layout, "flair", "t1", options, tmp_path / "cache-b", progress=False)
    assert a.cache_key != b.cache_key, "the cache key is local"
    assert a.fingerprint == b.fingerprint, "the fingerprint is not"
    assert prepare_slices(there, layout, "flair", "t1", options, tmp_path / "cache-b", progress=False).fingerprint == a.fingerprint  # reused cache
    assert prepare_slices(there, layout, "flair", "t1", SliceConfig(image_size=16), None, progress=False).fingerprint != a.fingerprint
    save_nifti(np.zeros(SHAPE, np.uint8), there / "B" / "B_seg.nii.gz")  # B has no tumor any more
    assert prepare_slices(there, layout, "flair", "t1", options, tmp_path / "cache-b", progress=False).fingerprint != a.fingerprint
    shutil.rmtree(there / "B")
    assert prepare_slices(there, layout, "flair", "t1", options, None, progress=False).fingerprint != a.fingerprint


def test_synthetic_fingerprint_is_its_recipe(tmp_path, monkeypatch):
    bench = load_benchmark(REPO / "benchmarks" / "synthetic-smoke.yaml")
    identities = []
    for cache in ("one", "two"):
        monkeypatch.setenv("BENCHBIAS_CACHE", str(tmp_path / cache))
        data = benchmark_data(bench.dataset, bench.slices, REGISTRY, progress=False)
        identities.append((data.fingerprint, data.cache_key, data.identity))
    assert identities[0][0] == identities[1][0] and identities[0][1] != identities[1][1]
    # Cells depend on the recipe of generated data, not on where a machine keeps it.
    assert identities[0][2] == identities[1][2] == identities[0][0]


def test_the_cells_of_a_data_folder_depend_on_its_files_where_they_lie(tmp_path):
    write_brats2018(tmp_path / "data", "A")
    bench = load_benchmark(REPO / "benchmarks" / "synthetic-smoke.yaml")
    data = benchmark_data(bench.dataset, SliceConfig(image_size=24), REGISTRY, data_path=str(tmp_path / "data"), progress=False)
    assert not data.generated and data.identity == data.cache_key


def benchmark_file(tmp_path, data, **domains):
    raw = yaml.safe_load((REPO / "benchmarks" / "synthetic-smoke.yaml").read_text())
    raw["name"] = "local"
    raw["dataset"] = {"path": str(data), "layout": "brats2018", "source": "flair", "target": "t1"}
    raw["slices"] = {"image_size": 24, "normalization": "max"}
    raw["split"] = {"method": "ordered", "holdout_subjects": 1}
    raw["domains"].update({"source_size": 2, "target_size": 2, "holdout_size": 4, **domains})
    path = tmp_path / "local.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_run_reuses_what_data_prepare_wrote(tmp_path, capsys, monkeypatch):
    for case in ("A", "B", "C"):
        write_brats2018(tmp_path / "data", case)
    bench_path = benchmark_file(tmp_path, tmp_path / "data")
    code, out, err = prepare_cli(capsys, "--benchmark", bench_path)  # PATH from the benchmark, cache in $BENCHBIAS_CACHE
    assert code == 0, err
    assert "split:    1 of 3 subjects held out, ordered (seed 0): C" in out
    assert "train      2 subjects: 6 tumor, 6 healthy slices" in out and "holdout    1 subjects: 3 tumor, 3 healthy slices" in out
    assert "protocol: fits: holdout 4 slices (2 tumor + 2 healthy)" in out

    import benchbias.data.slice_cache as slices_module

    monkeypatch.setattr(slices_module, "read_case", lambda *a, **k: pytest.fail("benchbias run must reuse the prepared slices"))
    bench = load_benchmark(bench_path)
    prepared = benchmark_data(bench.dataset, bench.slices, REGISTRY, progress=False)
    assert len(prepared.slices) == 18 and prepared.layout == "brats2018"


def test_protocol_asking_for_more_than_the_data_holds_fails_with_counts(tmp_path, capsys):
    for case in ("A", "B", "C"):
        write_brats2018(tmp_path / "data", case)
    code, out, err = prepare_cli(capsys, "--benchmark", benchmark_file(tmp_path, tmp_path / "data", holdout_size=10, holdout_tumor_fraction=0.6))
    assert code == 2 and "slices:   18 kept" in out  # the summary comes first; the cache is valid
    assert err.strip() == ("benchbias: error: domains.holdout_size: asks for 6 tumor + 4 healthy slices, but only 3 tumor + 3 healthy are available")


# ---- the paper's split ----------------------------------------------------------------------------


def fake_slices(subjects=10, per_subject=20, tumor_per_subject=10):
    n = subjects * per_subject
    is_tumor = np.tile(np.arange(per_subject) < tumor_per_subject, subjects)
    zeros = np.zeros((n, 4, 4), np.float32)
    ids = np.repeat([f"S{i:02d}" for i in np.random.default_rng(0).permutation(subjects)], per_subject)
    return SliceSet(
        source=zeros,
        target=zeros,
        tumor_mask=zeros.astype(bool),
        brain_fraction=np.ones(n, np.float32),
        tumor_fraction=is_tumor.astype(np.float32),
        is_tumor=is_tumor,
        case_id=ids,
        slice_index=np.tile(np.arange(per_subject), subjects),
    )


def test_ordered_split_holds_out_the_last_subjects_whatever_the_seed():
    slices = fake_slices()
    for seed in (0, 1, 2):
        split = split_subjects(slices, SplitConfig(holdout_subjects=4, seed=seed, method="ordered"), DomainConfig(holdout_size=20))
        assert split.holdout_subjects == ("S06", "S07", "S08", "S09")
        assert split.train_subjects == tuple(f"S{i:02d}" for i in range(6))
    random = {split_subjects(slices, SplitConfig(holdout_subjects=4, seed=s), DomainConfig(holdout_size=20)).holdout_subjects for s in range(4)}
    assert len(random) > 1


def test_holdout_tumor_fraction():
    slices = fake_slices(subjects=50, per_subject=20)
    domains = DomainConfig(holdout_size=300, holdout_tumor_fraction=0.53)
    split = split_subjects(slices, SplitConfig(holdout_subjects=20, method="ordered"), domains)
    assert len(split.holdout) == 300 and slices.is_tumor[split.holdout].sum() == 159  # the paper: 300 slices, 53% tumor
    with pytest.raises(ProtocolError, match=r"domains.holdout_size: asks for 212 tumor \+ 188 healthy slices, but only 200 tumor \+ 200 healthy"):
        split_subjects(slices, SplitConfig(holdout_subjects=20, method="ordered"), DomainConfig(holdout_size=400, holdout_tumor_fraction=0.53))


def test_every_case_bad_is_an_error_even_with_skip_bad(tmp_path):
    missing_modality(tmp_path)
    layout = REGISTRY.get("dataset", "brats2018").cls()
    with pytest.raises(DataError, match=r"every case is unusable \(1 skipped; first: case Z: missing file"):
        prepare_slices(tmp_path, layout, "flair", "t1", SliceConfig(image_size=24), progress=False, skip_bad=True)


def test_gzip_helper_sanity(tmp_path):
    """The truncated fixture really is a truncated gzip stream (not an empty file)."""
    truncated_gzip(tmp_path)
    with pytest.raises((EOFError, OSError)):
        gzip.decompress((tmp_path / "Z" / "Z_flair.nii.gz").read_bytes())
