"""The segmentation judge: learns a bright blob, is pinned and loaded like the classifier judge, and
its per-slice scores count exactly what they say."""

import contextlib
from pathlib import Path

import numpy as np
import pytest
import torch

from benchbias.foundation.contract import TrainContext
from benchbias.judges import pinned
from benchbias.judges.robustness import benign_perturbations
from benchbias.judges.segmenter import TumorSegmenter, quality_problems, segmentation_scores, train

PARAMS = {"channels": 4, "batch_size": 8, "lr": 0.01}
STEPS = 150


def blobs(n: int, shape: tuple[int, int], seed: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Noisy images on [-1, 1], ``(n, 1, H, W)``; every other one holds a bright disc, its tumor mask."""
    rng = np.random.default_rng(seed)
    rows, columns = np.mgrid[: shape[0], : shape[1]]
    images = rng.normal(-0.5, 0.1, (n, *shape)).astype(np.float32)
    masks = np.zeros((n, *shape), dtype=bool)
    is_tumor = np.arange(n) % 2 == 1
    for i in np.flatnonzero(is_tumor):
        r, c, radius = rng.uniform(4, shape[0] - 4), rng.uniform(4, shape[1] - 4), rng.uniform(2, 4)
        masks[i] = (rows - r) ** 2 + (columns - c) ** 2 <= radius**2
    images[masks] += 1.0
    return torch.from_numpy(images)[:, None], torch.from_numpy(masks)[:, None], is_tumor


def context(seed: int, steps: int, label: str):
    return TrainContext(seed=seed, device=torch.device("cpu"), steps=steps, workdir=Path(".")), contextlib.nullcontext()


def trained(shape=(16, 16), steps=STEPS):
    images, masks, _ = blobs(48, shape, seed=1)
    holdout, holdout_masks, holdout_is_tumor = blobs(16, shape, seed=2)
    segmenter = TumorSegmenter(**PARAMS)
    torch.manual_seed(123)  # train() seeds the weights: the state before it does not matter
    blob, info = train(segmenter, steps, 0, images, masks, holdout, holdout_masks, holdout_is_tumor, context)
    return segmenter, blob, info, holdout


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Networks this small train several times faster on one thread (and on a busy machine, far faster)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def first(one_thread):
    return trained()


def test_learns_the_blob_and_records_its_quality(first):
    segmenter, blob, info, holdout = first
    assert info["name"] == "monai-unet" and info["params"] == segmenter.hparams and info["steps"] == STEPS
    assert info["train_slices"] == 48 and info["train_tumor_slices"] == 24 and info["trained_with"]["device"] == "cpu"
    assert info["holdout_dice"] > 0.7 and info["holdout_false_positive_share"] <= 0.125
    assert 0.0 <= info["holdout_area_error"] < 0.5
    # Scored against its own outlines under each benign perturbation of the classifier's table.
    assert [row["perturbation"] for row in info["robustness"]] == [p.name for p in benign_perturbations()]
    assert all(0.0 <= row["area_removed"] <= 1.0 and 0.0 <= row["healthy_outlined"] <= 1.0 for row in info["robustness"])
    predicted = segmenter.predict(holdout)
    assert predicted.shape == holdout.shape and predicted.dtype == torch.bool and predicted.device.type == "cpu"


def test_same_seed_same_weights(first):
    assert trained()[2]["sha256"] == first[2]["sha256"]


def test_pinned_weights_load_with_judge_load_and_a_changed_file_is_refused(first, tmp_path):
    segmenter, blob, info, holdout = first
    files = pinned.JudgeFiles.beside(tmp_path / "bench.yaml", "bench-segmenter")
    assert files.weights.name == "bench-segmenter.pt" and files.weights.parent.name == "judges"
    record = {**info, "protocol_hash": "p" * 64, "dataset_fingerprint": "d" * 64, "code_sha256": "c" * 64}
    pinned.store(files, blob, record)
    loaded = TumorSegmenter(**PARAMS)
    assert pinned.load(files, loaded, "p" * 64, "d" * 64, "c" * 64)["sha256"] == info["sha256"] == pinned.sha256_of(files.weights)
    assert loaded.device == torch.device("cpu")
    assert torch.equal(loaded.predict(holdout), segmenter.predict(holdout))  # train() measured the reloaded weights
    weights = bytearray(files.weights.read_bytes())
    weights[-40] ^= 0xFF
    files.weights.write_bytes(bytes(weights))
    with pytest.raises(pinned.JudgeError, match="sha256"):
        pinned.load(files, TumorSegmenter(**PARAMS), "p" * 64, "d" * 64, "c" * 64)


def test_non_square_images_and_sides_that_are_not_multiples_of_4():
    segmenter, _, info, holdout = trained(shape=(16, 24), steps=5)
    assert segmenter.predict(holdout).shape == (16, 1, 16, 24) and info["holdout_dice"] is not None
    with pytest.raises(ValueError, match="multiples of 4"):
        segmenter.predict(torch.zeros(2, 1, 16, 18))


def test_quality_problems_name_low_dice_false_positives_and_fragility():
    robust = [{"perturbation": "blur", "area_removed": 0.1, "healthy_outlined": 0.05, "seg_dice": 0.8}]
    assert quality_problems({"holdout_dice": 0.75, "holdout_false_positive_share": 0.04, "robustness": robust}) == []
    fragile = [{"perturbation": "blur", "area_removed": 0.5, "healthy_outlined": 0.3, "seg_dice": 0.4}]
    problems = quality_problems({"holdout_dice": 0.3, "holdout_false_positive_share": 0.5, "robustness": fragile})
    assert len(problems) == 4 and "'blur' erases 0.50" in problems[0] and "'blur': tumor outlined on 0.300" in problems[1]
    assert "Dice" in problems[2] and "healthy" in problems[3]


def test_segmentation_scores_count_exactly():
    shape = (4, 1, 8, 8)
    s_t, s_r, gt = np.zeros(shape, bool), np.zeros(shape, bool), np.zeros(shape, bool)
    # 0: healthy input, 5 pixels outlined on the translation, 2 of them also on the real target.
    s_t[0, 0, 0, :5] = True
    s_r[0, 0, 0, :2] = True
    # 1: tumor input, GT 8 pixels of which the judge finds 4 on the real slice; the translation keeps 1.
    gt[1, 0, 2, :] = True
    s_r[1, 0, 2, :4] = True
    s_r[1, 0, 5, 0] = True  # outlined on the real slice outside GT: not tumor the translator can erase
    s_t[1, 0, 2, 3] = True
    # 2: tumor input that the judge misses on the real slice: area_removed does not count it.
    gt[2, 0, 4, :4] = True
    s_t[2, 0, 4, :4] = True
    # 3: healthy input, nothing outlined anywhere.
    brain = np.array([40.0, 32.0, 32.0, 50.0])
    scores = segmentation_scores(torch.from_numpy(s_t), s_r[:, 0], gt, brain, np.array([False, True, True, False]))
    assert set(scores) == {"area_added_px", "area_added", "area_removed", "seg_dice"}
    assert all(v.shape == (4,) and v.dtype == np.float64 for v in scores.values())
    np.testing.assert_array_equal(scores["area_added_px"], [3.0, np.nan, np.nan, 0.0])
    np.testing.assert_allclose(scores["area_added"], [3 / 40, np.nan, np.nan, 0.0])
    np.testing.assert_allclose(scores["area_removed"], [np.nan, 3 / 4, np.nan, np.nan])
    # Dice(S_t, S_r): 2*2/(5+2) on slice 0, 2*1/(1+5) on slice 1; S_r empty on slices 2 and 3.
    np.testing.assert_allclose(scores["seg_dice"], [4 / 7, 2 / 6, np.nan, np.nan])


def test_retraining_report_compares_a_segmenter_with_its_old_pin(first):
    """``judge train`` prints what retraining changed; a segmenter's robustness is a list of sizes,
    not a classifier's largest shift, and must not stop the report."""
    _, _, info, _ = first
    old = {**info, "sha256": "0" * 64, "holdout_dice": 0.5}
    lines = pinned.differences(old, info)
    assert any(line.startswith("holdout_dice: 0.500 ->") for line in lines)
    assert not any("largest shift" in line for line in lines)
    classifier = {"sha256": "a" * 64, "robustness": {"max_shift": 0.04}}
    assert "largest shift under a benign perturbation: 0.04 -> 0.09" in pinned.differences(classifier, {"sha256": "b" * 64, "robustness": {"max_shift": 0.09}})
