"""Scores of one (method, target fraction, seed) cell: tumor calls on the translations and pixel error.

``hallucination``: the share of healthy holdout slices, called healthy by the judge on their real
target, that it calls tumor on the translation; ``erasure``: the share of tumor slices, called tumor
on their real target, that it calls healthy on the translation.

Pixel errors are mean absolute errors on the [0, 1] intensity scale of the prepared slices
(each volume scaled so that 0 is background and its 99.5th percentile is 1). What a method's cells
add up to over the sweep is in :mod:`benchbias.summary`.
"""
from __future__ import annotations

import numpy as np
import torch
from monai.metrics import MAEMetric

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
    out_of_range: float = 0.0,
) -> dict[str, float | int | None]:
    """``translated``/``real``: (N, 1, H, W) in [0, 1]; ``tumor_mask``: (N, 1, H, W) bool;
    probabilities: the judge's tumor probability on the translation and on the real target;
    ``out_of_range``: the share of the translator's raw output pixels outside [-1, 1] (clamped)."""
    called = p_translated > TUMOR_THRESHOLD
    real_called = p_real > TUMOR_THRESHOLD
    healthy_in, tumor_in = ~source_is_tumor, source_is_tumor
    # Changed diagnoses are counted on the slices the judge gets right on the real target, so its
    # own errors on real images are not charged to the translator.
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
        "hallucination": _rate(called[healthy_in & ~real_called]),
        "erasure": _rate(~called[tumor_in & real_called]),
        # Flips against the classifier's own call on the real target slice.
        "added": _rate(called[~real_called]),
        "removed": _rate(~called[real_called]),
        "flip_rate": _rate(called != real_called),
        "mae": float(per_image_mae.mean()),
        "mae_healthy_inputs": float(per_image_mae[healthy_in].mean()) if healthy_in.any() else None,
        "mae_tumor_inputs": float(per_image_mae[tumor_in].mean()) if tumor_in.any() else None,
        "mae_inside_tumor": inside,
        "mae_outside_tumor": outside,
        "out_of_range": float(out_of_range),
    }
