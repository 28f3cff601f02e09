"""Scores of one (method, target fraction, seed) cell, and each method's bias over the sweep.

Pixel errors are mean absolute errors on the [0, 1] intensity scale of the prepared slices
(each volume scaled so that 0 is background and its 99.5th percentile is 1).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from monai.metrics import MAEMetric
from scipy import stats

TUMOR_THRESHOLD = 0.5


def _rate(mask: np.ndarray) -> float | None:
    return float(mask.mean()) if mask.size else None


def cell_scores(
    translated: torch.Tensor,
    real: torch.Tensor,
    tumor_mask: torch.Tensor,
    source_is_tumor: np.ndarray,
    p_translated: np.ndarray,
    p_real: np.ndarray,
) -> dict[str, float | int | None]:
    """``translated``/``real``: (N, 1, H, W) in [0, 1]; ``tumor_mask``: (N, 1, H, W) bool;
    probabilities: the classifier's tumor probability on the translation and on the real target."""
    called = p_translated > TUMOR_THRESHOLD
    real_called = p_real > TUMOR_THRESHOLD
    healthy_in, tumor_in = ~source_is_tumor, source_is_tumor
    per_image_mae = MAEMetric(reduction="none")(translated, real).flatten().numpy()
    error = (translated - real).abs()
    inside = float(error[tumor_mask].mean()) if tumor_mask.any() else None
    outside = float(error[~tumor_mask].mean())
    return {
        "n_holdout": int(len(called)),
        "n_healthy_inputs": int(healthy_in.sum()),
        "n_tumor_inputs": int(tumor_in.sum()),
        "tumor_called": _rate(called),
        "tumor_called_healthy_inputs": _rate(called[healthy_in]),
        "tumor_called_tumor_inputs": _rate(called[tumor_in]),
        # Flips against the classifier's own call on the real target slice.
        "added": _rate(called[~real_called]),
        "removed": _rate(~called[real_called]),
        "flip_rate": _rate(called != real_called),
        "mae": float(per_image_mae.mean()),
        "mae_healthy_inputs": float(per_image_mae[healthy_in].mean()) if healthy_in.any() else None,
        "mae_tumor_inputs": float(per_image_mae[tumor_in].mean()) if tumor_in.any() else None,
        "mae_inside_tumor": inside,
        "mae_outside_tumor": outside,
    }


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def trend(ratios: Sequence[float], rates: Sequence[float]) -> dict[str, float | None]:
    """Slope of ``rates`` against ``ratios`` (least squares) and Spearman's rho, with p-values.
    Constant rates have no rank correlation: rho and its p-value are reported as null."""
    x, y = np.asarray(ratios, dtype=float), np.asarray(rates, dtype=float)
    if len(np.unique(x)) < 2:
        return {"slope": None, "intercept": None, "slope_p": None, "spearman_rho": None, "spearman_p": None}
    fit = stats.linregress(x, y)
    constant = np.ptp(y) == 0
    rho = stats.spearmanr(x, y) if not constant else None
    return {
        "slope": _finite(fit.slope),
        "intercept": _finite(fit.intercept),
        "slope_p": _finite(fit.pvalue),
        "spearman_rho": None if constant else _finite(rho.statistic),
        "spearman_p": None if constant else _finite(rho.pvalue),
    }


def method_summary(cells: Sequence[dict]) -> dict:
    """Bias over the sweep (all seeds pooled) plus means of the flip rate and the pixel error."""
    ratios = [c["ratio"] for c in cells]
    summary = {
        "overall": trend(ratios, [c["scores"]["tumor_called"] for c in cells]),
        "healthy_inputs": trend(ratios, [c["scores"]["tumor_called_healthy_inputs"] for c in cells]),
        "tumor_inputs": trend(ratios, [c["scores"]["tumor_called_tumor_inputs"] for c in cells]),
    }
    slopes = [summary[k]["slope"] for k in ("healthy_inputs", "tumor_inputs")]
    summary["bias"] = float(np.mean([abs(s) for s in slopes])) if None not in slopes else None
    summary["mean_flip_rate"] = float(np.mean([c["scores"]["flip_rate"] for c in cells]))
    summary["mean_mae"] = float(np.mean([c["scores"]["mae"] for c in cells]))
    return summary


RANKING_RULE = (
    "ranked by bias (mean |slope| of the tumor-called rate against the target tumor fraction, over healthy "
    "and tumor inputs; lower is better), then mean flip rate, then mean absolute pixel error"
)


def rank(summaries: dict[str, dict]) -> list[dict]:
    def key(item):
        _, s = item
        return (s["bias"] if s["bias"] is not None else math.inf, s["mean_flip_rate"], s["mean_mae"])

    return [
        {"rank": i + 1, "method": name, "bias": s["bias"], "mean_flip_rate": s["mean_flip_rate"], "mean_mae": s["mean_mae"]}
        for i, (name, s) in enumerate(sorted(summaries.items(), key=key))
    ]
