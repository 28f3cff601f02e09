"""The options the paper benchmarks set to follow the authors' code: per-slice scaling, bilinear
resizing, pairs drawn from the target domain's rows and batches in a fixed order."""

import numpy as np
import pytest
import torch
from support import REPO
from test_slices import SHAPE, write_case

from benchbias.data.cases import load_case_slices
from benchbias.data.protocol import paired_domains, unpaired_domains
from benchbias.foundation.benchmark_files import load_benchmark
from benchbias.foundation.config import ConfigError, DomainConfig, SliceConfig, slice_options
from benchbias.foundation.contract import PairedSlices, TrainContext
from benchbias.foundation.registry import load_registry


def case_slices(tmp_path, **options):
    write_case(tmp_path)
    layout = load_registry().get("dataset", "brats2018").cls()
    case = layout.cases(tmp_path, ("flair", "t1"))[0]
    return load_case_slices(case, layout, "flair", "t1", SliceConfig(**options))


def test_per_slice_scaling_stretches_every_slice_to_its_own_range(tmp_path):
    per_volume = case_slices(tmp_path / "a", image_size=SHAPE[0], normalization="max")
    per_slice = case_slices(tmp_path / "b", image_size=SHAPE[0], normalization="per_slice")
    for images in (per_slice.source, per_slice.target):
        np.testing.assert_allclose(images.reshape(len(images), -1).max(axis=1), 1.0, rtol=1e-6)
        np.testing.assert_allclose(images.reshape(len(images), -1).min(axis=1), 0.0, atol=1e-6)
    # The volume's own maximum is the tumor's (400) in FLAIR: slices without tumor peak lower there.
    assert per_volume.source[~per_volume.is_tumor].max() < 0.5
    # Within a slice the map is affine: the order of intensities is kept.
    healthy = int(np.flatnonzero(~per_slice.is_tumor)[0])
    ratio = per_slice.target[healthy][per_volume.target[healthy] > 0] / per_volume.target[healthy][per_volume.target[healthy] > 0]
    assert np.ptp(ratio) < 1e-4


def test_bilinear_resizing_interpolates_where_area_repeats_pixels(tmp_path):
    area = case_slices(tmp_path / "a", image_size=2 * SHAPE[0], normalization="max")
    bilinear = case_slices(tmp_path / "b", image_size=2 * SHAPE[0], normalization="max", resize_mode="bilinear")
    # Enlarged 2x: area mode repeats each pixel in a 2 x 2 block; bilinear blends neighbours.
    block = area.target[1]
    np.testing.assert_array_equal(block[0::2, 0::2], block[1::2, 1::2])
    assert not np.array_equal(bilinear.target[1][0::2, 0::2], bilinear.target[1][1::2, 1::2])
    np.testing.assert_allclose(bilinear.target[1].mean(), area.target[1].mean(), rtol=0.02)


def test_the_new_slice_options_keep_earlier_prepared_slices_keys():
    assert "resize_mode" not in slice_options(SliceConfig())
    assert slice_options(SliceConfig(resize_mode="bilinear"))["resize_mode"] == "bilinear"
    quick = load_benchmark(REPO / "benchmarks" / "synthetic-quick.yaml")
    assert "resize_mode" not in quick.to_dict()["slices"] and "paired_from_target" not in quick.to_dict()["domains"]


def test_pairs_drawn_from_the_target_domain_are_its_rows_in_the_data_sets_order():
    rng = np.random.default_rng(0)
    is_tumor = rng.random(400) < 0.5
    train = np.arange(400)
    own = DomainConfig(source_size=60, target_size=60, holdout_size=20)
    shared = DomainConfig(source_size=60, target_size=60, holdout_size=20, paired_from_target=True)
    for ratio in (0.0, 0.3, 1.0):
        target = unpaired_domains(train, is_tumor, shared, ratio, seed=0).target
        pairs = paired_domains(train, is_tumor, shared, ratio, seed=0)
        np.testing.assert_array_equal(pairs.source, np.sort(target))
        np.testing.assert_array_equal(pairs.source, pairs.target)
        assert set(paired_domains(train, is_tumor, own, ratio, seed=0).source) != set(target)


def test_serial_batches_take_the_pairs_in_order_every_epoch(tmp_path):
    ctx = TrainContext(seed=3, device=torch.device("cpu"), steps=1, workdir=tmp_path)
    serial = ctx.batches(6, 2, serial=True)
    assert [next(serial).tolist() for _ in range(6)] == [[0, 1], [2, 3], [4, 5]] * 2
    shuffled = ctx.batches(6, 2)
    assert sorted(sum((next(shuffled).tolist() for _ in range(3)), [])) == list(range(6))


def test_a_paired_baseline_trains_in_order_with_serial_batches(tmp_path):
    registry = load_registry()
    images = torch.linspace(-1, 1, 8 * 16 * 16).reshape(8, 1, 16, 16)
    data = PairedSlices(source=images, target=images.flip(0))
    seen = []
    for name in ("l1", "condgan", "pix2pix"):
        translator = registry.get("translator", name).cls(filters=4, blocks=1, batch_size=4, serial_batches=True)
        assert translator.hparams["serial_batches"] is True
    translator = registry.get("translator", "l1").cls(filters=4, blocks=1, batch_size=4, serial_batches=True)
    original = translator.training_step

    def recording(source, target, ctx):
        seen.append(source[:, 0, 0, 0].tolist())
        return original(source, target, ctx)

    translator.training_step = recording
    translator.fit(data, TrainContext(seed=0, device=torch.device("cpu"), steps=4, workdir=tmp_path))
    first = images[:, 0, 0, 0].tolist()
    assert seen == [first[:4], first[4:]] * 2


def paper_pool(n: int = 300):
    rng = np.random.default_rng(1)
    return np.arange(n), rng.random(n) < 0.6


def test_drawing_with_replacement_is_the_legacy_numpy_draw_kept_once():
    from benchbias.data.protocol import redraw_unique

    train, is_tumor = paper_pool()
    drawn = redraw_unique(train, is_tumor, 200, 0.3, seed=0, field="domains.target_size")
    np.random.seed(0)  # as the paper's code did before every draw: tumor slices first, then healthy
    expected = np.concatenate([np.random.choice(train[is_tumor], 60), np.random.choice(train[~is_tumor], 140)])
    np.testing.assert_array_equal(drawn, np.unique(expected))
    assert len(drawn) < 200 and abs(is_tumor[drawn].mean() - 0.3) < 0.1


def test_with_replacement_the_source_is_the_target_at_its_fraction_and_tumor_draws_nest():
    train, is_tumor = paper_pool()
    domains = DomainConfig(source_size=200, target_size=200, holdout_size=20, target_overlaps_source=True, sampling="with_replacement")
    half = unpaired_domains(train, is_tumor, domains, 0.5, seed=0)
    np.testing.assert_array_equal(half.source, half.target)  # the paper's domain A is its B at 50%
    targets = [unpaired_domains(train, is_tumor, domains, r, seed=0).target for r in (0.2, 0.6, 1.0)]
    tumor_at = [set(t[is_tumor[t]]) for t in targets]
    assert tumor_at[0] <= tumor_at[1] <= tumor_at[2]  # one reseeded stream: fewer draws are a prefix of more
    other_seed = unpaired_domains(train, is_tumor, domains, 0.5, seed=1).target
    assert set(other_seed) != set(half.target)


def test_the_subject_order_decides_which_slices_are_drawn():
    from benchbias.data.protocol import ProtocolError, pool_order, split_subjects
    from benchbias.data.slice_set import SliceSet
    from benchbias.foundation.config import SplitConfig

    n = 120
    rng = np.random.default_rng(2)
    case_id = np.repeat([f"S{i}" for i in range(6)], n // 6)
    slices = SliceSet(
        source=np.zeros((n, 4, 4), np.float32),
        target=np.zeros((n, 4, 4), np.float32),
        tumor_mask=np.zeros((n, 4, 4), np.float32),
        is_tumor=rng.random(n) < 0.5,
        case_id=case_id,
        slice_index=np.tile(np.arange(n // 6), 6),
        brain_fraction=np.ones(n),
        tumor_fraction=np.zeros(n),
    )
    domains = DomainConfig(source_size=40, target_size=40, holdout_size=20, target_overlaps_source=True, sampling="with_replacement")
    forward = SplitConfig(holdout_subjects=("S5",), subject_order=tuple(f"S{i}" for i in range(6)))
    backward = SplitConfig(holdout_subjects=("S5",), subject_order=tuple(f"S{i}" for i in reversed(range(6))))
    a, b = split_subjects(slices, forward, domains), split_subjects(slices, backward, domains)
    assert sorted(a.train) == sorted(b.train) and list(a.train) != list(b.train)
    assert list(case_id[b.train][:20]) == ["S4"] * 20 and list(slices.slice_index[b.train][:3]) == [0, 1, 2]
    draw = [set(unpaired_domains(s.train, slices.is_tumor, domains, 0.5, 0).target) for s in (a, b)]
    assert draw[0] != draw[1]
    with pytest.raises(ProtocolError, match=r"^split.subject_order: 1 subject\(s\) of the data not listed: S5$"):
        pool_order(slices, SplitConfig(subject_order=tuple(f"S{i}" for i in range(5))))


def test_with_replacement_needs_overlapping_domains_and_a_non_empty_pool():
    from benchbias.data.protocol import ProtocolError, check_capacity
    from benchbias.foundation.benchmark_files import parse_benchmark, read_yaml

    raw = read_yaml(REPO / "benchmarks" / "synthetic-smoke.yaml")
    raw["domains"]["sampling"] = "with_replacement"
    with pytest.raises(ConfigError, match="domains.sampling: with_replacement draws every domain from all training slices"):
        parse_benchmark(raw, "smoke.yaml")
    raw["domains"]["target_overlaps_source"] = True
    assert parse_benchmark(raw, "smoke.yaml").domains.sampling == "with_replacement"
    domains = DomainConfig(source_size=500, target_size=500, holdout_size=20, target_overlaps_source=True, sampling="with_replacement")
    check_capacity(np.arange(10), np.arange(10) < 5, domains, unpaired=True)  # 500 draws from 10 slices: fine
    with pytest.raises(ProtocolError, match="at target fraction 0.1 the protocol draws tumor slices, but the training subjects have none"):
        check_capacity(np.arange(10), np.zeros(10, bool), domains, unpaired=True)
