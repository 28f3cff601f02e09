"""A method's scores over the sweep: bias (trend of tumor calls against the target tumor fraction),
per-fraction means, 95% confidence intervals over seeds, and the leaderboard ranking.

Only numpy and scipy: leaderboards, ``compare`` and ``check`` use this without importing torch.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95

# Per-fraction scores averaged over seeds (cell score name -> shown as).
FRACTION_SCORES = (
    "tumor_called",
    "tumor_called_healthy_inputs",
    "tumor_called_tumor_inputs",
    "added",
    "removed",
    "flip_rate",
    "mae",
    "mae_inside_tumor",
    "mae_outside_tumor",
)
# Per-seed summary scores, each with the range its confidence interval is clipped to.
SEED_SCORES = ("bias", "slope_healthy", "slope_tumor", "mean_flip_rate", "mean_mae")
BOUNDS = {"bias": (0.0, None), "mean_flip_rate": (0.0, 1.0), "mean_mae": (0.0, 1.0), **{k: (0.0, 1.0) for k in FRACTION_SCORES}}

RANKING_RULE = (
    "ranked by bias (mean |slope| of the tumor-called rate against the target tumor fraction, over healthy "
    "and tumor inputs; lower is better), then mean flip rate, then mean absolute pixel error"
)


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def trend(ratios: Sequence[float], rates: Sequence[float | None]) -> dict[str, float | None]:
    """Slope of ``rates`` against ``ratios`` (least squares) and Spearman's rho, with p-values.
    Constant rates have no rank correlation: rho and its p-value are reported as null."""
    empty = {"slope": None, "intercept": None, "slope_p": None, "spearman_rho": None, "spearman_p": None}
    pairs = [(x, y) for x, y in zip(ratios, rates) if y is not None]
    if len({x for x, _ in pairs}) < 2:
        return empty
    x, y = np.array(pairs, dtype=float).T
    fit = stats.linregress(x, y)
    constant = np.ptp(y) == 0
    rho = None if constant else stats.spearmanr(x, y)
    return {
        "slope": _finite(fit.slope),
        "intercept": _finite(fit.intercept),
        "slope_p": _finite(fit.pvalue),
        "spearman_rho": None if constant else _finite(rho.statistic),
        "spearman_p": None if constant else _finite(rho.pvalue),
    }


def interval(values: Iterable[float | None], bounds: tuple[float | None, float | None] = (None, None)) -> list[float] | None:
    """Two-sided t-interval of the mean at :data:`CONFIDENCE`, clipped to the score's ``bounds``
    (a rate's interval stays in [0, 1]); None with fewer than two values."""
    v = np.array([x for x in values if x is not None], dtype=float)
    if len(v) < 2:
        return None
    mean, sem = float(v.mean()), float(stats.sem(v))
    if sem == 0.0:
        return [mean, mean]
    low, high = stats.t.interval(CONFIDENCE, len(v) - 1, loc=mean, scale=sem)
    low, high = float(low), float(high)
    if bounds[0] is not None:
        low = max(low, bounds[0])
    if bounds[1] is not None:
        high = min(high, bounds[1])
    return [low, high]


def _mean(values: Iterable[float | None]) -> float | None:
    v = [x for x in values if x is not None]
    return float(np.mean(v)) if v else None


def _sweep(cells: Sequence[dict]) -> dict[str, Any]:
    ratios = [c["ratio"] for c in cells]
    sweep = {
        "overall": trend(ratios, [c["scores"]["tumor_called"] for c in cells]),
        "healthy_inputs": trend(ratios, [c["scores"]["tumor_called_healthy_inputs"] for c in cells]),
        "tumor_inputs": trend(ratios, [c["scores"]["tumor_called_tumor_inputs"] for c in cells]),
    }
    slopes = [sweep[k]["slope"] for k in ("healthy_inputs", "tumor_inputs")]
    sweep["bias"] = float(np.mean(np.abs(slopes))) if None not in slopes else None
    sweep["mean_flip_rate"] = _mean(c["scores"]["flip_rate"] for c in cells)
    sweep["mean_mae"] = _mean(c["scores"]["mae"] for c in cells)
    return sweep


def method_summary(cells: Sequence[dict]) -> dict[str, Any]:
    """Bias, flip rate and pixel error over the sweep with all seeds pooled, plus each seed's own
    values and their 95% confidence intervals (null when a single seed ran)."""
    summary = _sweep(cells)
    per_seed = []
    for seed in sorted({c["seed"] for c in cells}):
        s = _sweep([c for c in cells if c["seed"] == seed])
        per_seed.append(
            {
                "seed": seed,
                "bias": s["bias"],
                "slope_healthy": s["healthy_inputs"]["slope"],
                "slope_tumor": s["tumor_inputs"]["slope"],
                "mean_flip_rate": s["mean_flip_rate"],
                "mean_mae": s["mean_mae"],
            }
        )
    summary["n_seeds"] = len(per_seed)
    summary["per_seed"] = per_seed
    summary["ci95"] = {name: interval((s[name] for s in per_seed), BOUNDS.get(name, (None, None))) for name in SEED_SCORES}
    return summary


def per_fraction(cells: Sequence[dict]) -> list[dict[str, Any]]:
    """Each target fraction's scores averaged over seeds, with 95% intervals over seeds."""
    rows = []
    for ratio in sorted({c["ratio"] for c in cells}):
        at = [c["scores"] for c in cells if c["ratio"] == ratio]
        rows.append(
            {
                "ratio": ratio,
                "n_seeds": len(at),
                "mean": {k: _mean(s[k] for s in at) for k in FRACTION_SCORES},
                "ci95": {k: interval((s[k] for s in at), BOUNDS[k]) for k in FRACTION_SCORES},
            }
        )
    return rows


def fmt(value: float | None, digits: int = 3) -> str:
    """A score for a table: fixed digits, "n/a" when undefined."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def fmt_ci(value: float | None, ci: list[float] | None, digits: int = 3) -> str:
    """A score followed by its confidence interval in brackets, when it has one."""
    return fmt(value, digits) + (f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else "")


def ranking_key(summary: dict[str, Any]) -> tuple[float, float, float]:
    missing = math.inf
    return (
        summary["bias"] if summary["bias"] is not None else missing,
        summary["mean_flip_rate"] if summary["mean_flip_rate"] is not None else missing,
        summary["mean_mae"] if summary["mean_mae"] is not None else missing,
    )


def rank(summaries: dict[str, dict]) -> list[dict[str, Any]]:
    """Methods in :data:`RANKING_RULE` order."""
    ordered = sorted(summaries.items(), key=lambda item: ranking_key(item[1]))
    return [
        {"rank": i + 1, "method": name, "bias": s["bias"], "mean_flip_rate": s["mean_flip_rate"], "mean_mae": s["mean_mae"]}
        for i, (name, s) in enumerate(ordered)
    ]
