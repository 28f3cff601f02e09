"""Scores of one (method, target fraction, seed) cell, each declared beside the metric that computes it.

A metric returns per-slice values (NaN where a slice does not count); a cell's score is their mean
over the holdout slices that count, and its 95% interval comes from a bootstrap over those slices
(:func:`score_cell`). Images are on the [0, 1] slice scale of the prepared data (the results file's
``dataset.intensity_scale`` says what 1 is). What a method's cells add up to over the sweep is in
:mod:`benchbias.scoring.summary`; README, "What is measured", gives the formulas.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from monai.metrics import MAEMetric, PSNRMetric, SSIMMetric
from monai.metrics.regression import compute_ssim_and_cs
from scipy import stats

from benchbias.foundation.contract import Evidence, Metric
from benchbias.foundation.errors import BenchbiasError
from benchbias.foundation.scoretable import Score, ScoreTable
from benchbias.judges.segmenter import segmentation_scores
from benchbias.scoring.summary import derived_scores
from benchbias.scoring.tolerances import CHECK_TOLERANCES

TUMOR_THRESHOLD = 0.5
BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95
PSNR_CEILING = 100.0  # dB; an exact copy has infinite PSNR, and results hold finite numbers only


def _where(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values`` (as floats) on the slices in ``mask``, NaN elsewhere."""
    return np.where(mask, values.astype(np.float64), np.nan)


def _rate(name: str, label: str, help: str, **kw) -> Score:
    return Score(name, label, help, kind="rate", **kw)


class JudgeCalls(Metric):
    """The judge's tumor calls on the translations, against its calls on the real targets.

    Changed diagnoses are counted on the slices the judge gets right on the real target, so its own
    errors on real images are not charged to the translator."""

    name = "judge-calls"
    scores = (
        Score("n_holdout", "holdout slices", "holdout slices translated", kind="count", digits=0, bounds=(1, None), better="neither", per_fraction=False),
        Score("n_healthy_inputs", "healthy inputs", "healthy holdout slices", kind="count", digits=0, bounds=(0, None), better="neither", per_fraction=False),
        Score("n_tumor_inputs", "tumor inputs", "tumor holdout slices", kind="count", digits=0, bounds=(0, None), better="neither", per_fraction=False),
        _rate("tumor_called", "tumor-called", "translations the judge calls tumor", better="neither"),
        _rate("tumor_called_healthy_inputs", "tumor-called (healthy in)", "translations of healthy slices called tumor (Figure 2, left)", better="neither"),
        _rate("tumor_called_tumor_inputs", "tumor-called (tumor in)", "translations of tumor slices called tumor (Figure 2, right)", better="neither"),
        _rate(
            "hallucination",
            "hallucination",
            "healthy slices (called healthy on the real target) called tumor after translation",
            sweep=True,
            verdict=True,
            tolerance=CHECK_TOLERANCES["hallucination"],
        ),
        _rate(
            "erasure",
            "erasure",
            "tumor slices (called tumor on the real target) called healthy after translation",
            sweep=True,
            verdict=True,
            tolerance=CHECK_TOLERANCES["erasure"],
        ),
        _rate("added", "added", "slices called healthy on the real target and tumor on the translation"),
        _rate("removed", "removed", "slices called tumor on the real target and healthy on the translation"),
        _rate(
            "flip_rate",
            "flip rate",
            "translations whose call differs from the call on the real target",
            sweep=True,
            verdict=True,
            tolerance=CHECK_TOLERANCES["flip_rate"],
        ),
    )

    def compute(self, e: Evidence) -> dict[str, np.ndarray | int]:
        called, real_called = e.p_tumor > TUMOR_THRESHOLD, e.p_tumor_real > TUMOR_THRESHOLD
        return calls(called, real_called, e.source_is_tumor) | {
            "n_holdout": len(called),
            "n_healthy_inputs": int((~e.source_is_tumor).sum()),
            "n_tumor_inputs": int(e.source_is_tumor.sum()),
            "added": _where(~real_called, called),
            "removed": _where(real_called, ~called),
        }


def calls(called: np.ndarray, real_called: np.ndarray, tumor_in: np.ndarray, suffix: str = "") -> dict[str, np.ndarray]:
    """Per-slice tumor calls of a judge, and its hallucination, erasure and flip indicators."""
    healthy_in = ~tumor_in
    return {
        f"tumor_called{suffix}": called.astype(np.float64),
        f"tumor_called_healthy_inputs{suffix}": _where(healthy_in, called),
        f"tumor_called_tumor_inputs{suffix}": _where(tumor_in, called),
        f"hallucination{suffix}": _where(healthy_in & ~real_called, called),
        f"erasure{suffix}": _where(tumor_in & real_called, ~called),
        f"flip_rate{suffix}": (called != real_called).astype(np.float64),
    }


class PixelDifference(Metric):
    """Mean absolute error against the real target, per slice (MONAI's MAEMetric), and where."""

    name = "pixel-error"
    scores = (
        Score(
            "mae",
            "MAE",
            "mean absolute pixel error against the real target",
            kind="error",
            digits=4,
            sweep=True,
            verdict=True,
            tolerance=CHECK_TOLERANCES["mae"],
        ),
        Score("mae_healthy_inputs", "MAE (healthy in)", "MAE of translations of healthy slices", kind="error", digits=4),
        Score("mae_tumor_inputs", "MAE (tumor in)", "MAE of translations of tumor slices", kind="error", digits=4),
        Score("mae_inside_tumor", "MAE in tumor", "MAE inside the tumor mask (tumor slices)", kind="error", digits=4),
        Score("mae_outside_tumor", "MAE outside", "MAE outside the tumor mask", kind="error", digits=4),
        Score("out_of_range", "out of range", "share of raw output pixels outside the range the translator saw (clamped)", kind="rate"),
    )

    def compute(self, e: Evidence) -> dict[str, np.ndarray]:
        per_image = MAEMetric(reduction="none")(e.translated, e.real).flatten().double().numpy()
        error = (e.translated - e.real).abs().double()
        inside, outside = masked_means(error, e.tumor_mask), masked_means(error, ~e.tumor_mask)
        return {
            "mae": per_image,
            "mae_healthy_inputs": _where(~e.source_is_tumor, per_image),
            "mae_tumor_inputs": _where(e.source_is_tumor, per_image),
            "mae_inside_tumor": inside,
            "mae_outside_tumor": outside,
            "out_of_range": e.out_of_range.astype(np.float64),
        }


def masked_means(values: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """Per-image mean of ``values`` (N, 1, H, W) over ``mask``; NaN where the mask is empty."""
    total = (values * mask).flatten(1).sum(1)
    count = mask.flatten(1).sum(1)
    return torch.where(count > 0, total / count.clamp(min=1), torch.nan).double().numpy()


def ssim_window(shape: Sequence[int]) -> int:
    """The SSIM window: the usual 11 pixels, 7 on slices smaller than 64 pixels (an 11-pixel window
    would leave a 22 x 22 map of a 32 x 32 slice)."""
    return 11 if min(shape) >= 64 else 7


class Similarity(Metric):
    """SSIM and PSNR against the real target (MONAI), per slice and inside / outside the tumor mask.

    SSIM uses a Gaussian window (sigma 1.5, see :func:`ssim_window`) and data range 1; inside and
    outside the tumor it is the mean of MONAI's SSIM map over the (window-cropped) mask. PSNR is
    10 log10(1 / MSE), capped at 100 dB."""

    name = "similarity"
    scores = (
        Score("ssim", "SSIM", "structural similarity to the real target", kind="similarity", bounds=(-1.0, 1.0), better="higher", sweep=True),
        Score("ssim_inside_tumor", "SSIM in tumor", "SSIM inside the tumor mask (tumor slices)", kind="similarity", bounds=(-1.0, 1.0), better="higher"),
        Score("ssim_outside_tumor", "SSIM outside", "SSIM outside the tumor mask", kind="similarity", bounds=(-1.0, 1.0), better="higher"),
        Score(
            "psnr",
            "PSNR (dB)",
            "peak signal-to-noise ratio against the real target",
            kind="similarity",
            digits=2,
            bounds=(0.0, PSNR_CEILING),
            better="higher",
            sweep=True,
        ),
        Score(
            "psnr_inside_tumor",
            "PSNR in tumor",
            "PSNR inside the tumor mask (tumor slices)",
            kind="similarity",
            digits=2,
            bounds=(0.0, PSNR_CEILING),
            better="higher",
        ),
        Score("psnr_outside_tumor", "PSNR outside", "PSNR outside the tumor mask", kind="similarity", digits=2, bounds=(0.0, PSNR_CEILING), better="higher"),
    )

    def compute(self, e: Evidence) -> dict[str, np.ndarray]:
        x, y = e.translated.float(), e.real.float()
        window = ssim_window(x.shape[-2:])
        ssim = SSIMMetric(spatial_dims=2, data_range=1.0, win_size=window, kernel_sigma=1.5, reduction="none")(x, y).flatten().double().numpy()
        ssim_map, _ = compute_ssim_and_cs(x, y, 2, kernel_size=[window] * 2, kernel_sigma=[1.5] * 2, data_range=1.0)
        crop = window // 2
        mask = e.tumor_mask[..., crop : x.shape[-2] - crop, crop : x.shape[-1] - crop]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # log10 of an exact copy's 0 error
            psnr = PSNRMetric(max_val=1.0, reduction="none")(x, y).flatten().double().numpy()
        squared = (x - y).double() ** 2
        return {
            "ssim": ssim,
            "ssim_inside_tumor": masked_means(ssim_map.double(), mask),
            "ssim_outside_tumor": masked_means(ssim_map.double(), ~mask),
            "psnr": np.minimum(psnr, PSNR_CEILING),
            "psnr_inside_tumor": psnr_of(masked_means(squared, e.tumor_mask)),
            "psnr_outside_tumor": psnr_of(masked_means(squared, ~e.tumor_mask)),
        }


def psnr_of(mse: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.minimum(10.0 * np.log10(1.0 / mse), PSNR_CEILING)


class SecondJudge(Metric):
    """The second judge's hallucination, erasure and flip rates, and how far the two judges agree
    on the translations (share of equal calls; Cohen's kappa)."""

    name = "second-judge"
    needs = ("second_p_tumor",)
    scores = (
        _rate("tumor_called_healthy_inputs_2", "tumor-called (healthy in), judge 2", "as tumor_called_healthy_inputs, by the second judge", better="neither"),
        _rate("tumor_called_tumor_inputs_2", "tumor-called (tumor in), judge 2", "as tumor_called_tumor_inputs, by the second judge", better="neither"),
        _rate("hallucination_2", "hallucination, judge 2", "hallucination by the second judge", sweep=True),
        _rate("erasure_2", "erasure, judge 2", "erasure by the second judge", sweep=True),
        _rate("flip_rate_2", "flip rate, judge 2", "flip rate by the second judge", sweep=True),
        Score("judge_agreement", "judges agree", "translations both judges call the same", kind="agreement", better="neither", sweep=True),
        Score(
            "kappa",
            "Cohen's kappa",
            "the two judges' agreement on the translations beyond chance (null when a judge calls every slice alike)",
            kind="agreement",
            bounds=(-1.0, 1.0),
            better="neither",
            sweep=True,
        ),
    )

    def compute(self, e: Evidence) -> dict[str, np.ndarray | float | None]:
        first = e.p_tumor > TUMOR_THRESHOLD
        called, real_called = e.second_p_tumor > TUMOR_THRESHOLD, e.second_p_tumor_real > TUMOR_THRESHOLD
        mine = calls(called, real_called, e.source_is_tumor, suffix="_2")
        keep = ("tumor_called_healthy_inputs_2", "tumor_called_tumor_inputs_2", "hallucination_2", "erasure_2", "flip_rate_2")
        return {k: mine[k] for k in keep} | {"judge_agreement": (first == called).astype(np.float64), "kappa": cohen_kappa(first, called)}


def cohen_kappa(a: np.ndarray, b: np.ndarray) -> float | None:
    """Cohen's kappa of two binary raters; None when chance agreement is total (kappa undefined)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    observed = float((a == b).mean())
    chance = float(a.mean() * b.mean() + (1 - a.mean()) * (1 - b.mean()))
    return None if chance >= 1.0 else (observed - chance) / (1.0 - chance)


class Segmentation(Metric):
    """Where and how much: the segmentation judge's tumor outlines on the translation against its
    outlines on the real target (:func:`benchbias.judges.segmenter.segmentation_scores` gives the formulas)."""

    name = "segmentation"
    needs = ("segmented",)
    scores = (
        Score(
            "area_added_px",
            "area added (px)",
            "pixels outlined as tumor on the translation of a healthy slice and not on its real target",
            kind="count",
            digits=1,
            bounds=(0.0, None),
        ),
        Score("area_added", "area added", "the same as a share of the slice's brain", sweep=True),
        Score(
            "area_removed",
            "area removed",
            "share of the tumor outlined on the real target (within the true tumor) no longer outlined on the translation, tumor slices",
            sweep=True,
        ),
        Score(
            "seg_dice",
            "tumor Dice",
            "Dice of the outlines on the translation and on the real target (slices outlined on the real target)",
            kind="similarity",
            better="higher",
            sweep=True,
        ),
    )

    def compute(self, e: Evidence) -> dict[str, np.ndarray]:
        brain_pixels = e.brain_fraction.astype(np.float64) * e.real.shape[-2] * e.real.shape[-1]
        return segmentation_scores(e.segmented, e.segmented_real, e.tumor_mask, brain_pixels, e.source_is_tumor)


BUILTIN_METRICS: tuple[type[Metric], ...] = (JudgeCalls, PixelDifference, Similarity, Segmentation, SecondJudge)


def score_table(metrics: Sequence[Metric]) -> ScoreTable:
    """The cell scores of ``metrics`` and the sweep scores derived from them (:mod:`benchbias.scoring.summary`)."""
    cell = ScoreTable(s for m in metrics for s in m.scores)
    return ScoreTable([*derived_scores(cell), *cell])


def bootstrap_interval(values: np.ndarray, seed: int) -> list[float] | None:
    """95% percentile-bootstrap interval of the mean of the finite ``values`` (the slices that count),
    resampled with replacement; None with fewer than two slices."""
    v = values[np.isfinite(values)]
    if len(v) < 2:
        return None
    if np.ptp(v) == 0:
        return [float(v[0]), float(v[0])]
    result = stats.bootstrap(
        (v,),
        np.mean,
        confidence_level=CONFIDENCE,
        n_resamples=BOOTSTRAP_RESAMPLES,
        method="percentile",
        vectorized=True,
        axis=-1,
        random_state=np.random.default_rng(seed),
    )
    return [float(result.confidence_interval.low), float(result.confidence_interval.high)]


class MetricError(BenchbiasError, ValueError):
    """A metric returned something other than its declared scores."""


def score_cell(metrics: Sequence[Metric], evidence: Evidence, seed: int = 0) -> tuple[dict[str, float | int | None], dict[str, list[float] | None]]:
    """Every metric's scores of one cell, and the bootstrap interval of each per-slice score."""
    scores: dict[str, float | int | None] = {}
    intervals: dict[str, list[float] | None] = {}
    n = len(evidence.source_is_tumor)
    for metric in metrics:
        values: Mapping = metric.compute(evidence)
        declared = {s.name: s for s in metric.scores}
        if set(values) != set(declared):
            missing, extra = set(declared) - set(values), set(values) - set(declared)
            raise MetricError(
                f"metric '{metric.name}': compute() returned {sorted(extra)}, which it does not declare in 'scores'"
                if extra
                else f"metric '{metric.name}': compute() did not return {sorted(missing)}"
            )
        for name, value in values.items():
            if isinstance(value, np.ndarray):
                if value.shape != (n,):
                    raise MetricError(f"metric '{metric.name}': score '{name}' has shape {value.shape}; per-slice values must have shape ({n},)")
                value = value.astype(np.float64)
                counted = value[np.isfinite(value)]
                scores[name] = float(counted.mean()) if len(counted) else None
                intervals[name] = bootstrap_interval(value, seed)
            else:
                scores[name] = None if value is None else value
            if scores[name] is not None and not declared[name].within_bounds(scores[name]):
                raise MetricError(f"metric '{metric.name}': score '{name}' is {scores[name]!r}, outside its declared bounds {list(declared[name].bounds)}")
    return scores, intervals
