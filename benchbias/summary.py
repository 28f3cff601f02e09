"""A method's scores over the sweep (the verdict), per-fraction means, 95% confidence intervals over
seeds, and the leaderboard ranking.

The verdict answers what a translator's user fears: how often does translation change a diagnosis,
and how much does that depend on the composition of the training target? Per cell (scores.py) the
judge's call on each translation is compared with its call on the real target slice of the same
holdout slice; here those rates are averaged over the sweep of target tumor fractions and their
trend against the fraction is fitted. README, "What is measured", gives the formulas.

Only numpy and scipy: leaderboards, ``compare`` and ``check`` use this without importing torch.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np
from scipy import stats

CONFIDENCE = 0.95

# Per-fraction scores averaged over seeds (cell score name -> shown as).
FRACTION_SCORES = (
    "tumor_called",
    "tumor_called_healthy_inputs",
    "tumor_called_tumor_inputs",
    "hallucination",
    "erasure",
    "added",
    "removed",
    "flip_rate",
    "mae",
    "mae_inside_tumor",
    "mae_outside_tumor",
)


@dataclass(frozen=True)
class SweepScore:
    """A score of a method over the whole sweep: lower is better for every one of them."""

    name: str
    label: str
    help: str
    digits: int = 3
    bounds: tuple[float | None, float | None] = (0.0, 1.0)


# The verdict's columns, in the order tables show them (README, "What is measured").
SWEEP_SCORES = (
    SweepScore("changed", "changed diagnoses", "mean over the sweep of (hallucination + erasure) / 2: the primary score"),
    SweepScore("hallucination", "hallucination", "healthy slices (called healthy on the real T1) called tumor after translation"),
    SweepScore("erasure", "erasure", "tumor slices (called tumor on the real T1) called healthy after translation"),
    SweepScore("sensitivity", "composition sensitivity", "max(|slope| of hallucination, |slope| of erasure) against the target tumor fraction"),
    SweepScore("mean_flip_rate", "flip rate", "translations whose call differs from the call on the real T1"),
    SweepScore("mean_mae", "MAE", "mean absolute pixel error on the [0, 1] scale", digits=4),
)
SWEEP = {s.name: s for s in SWEEP_SCORES}
# Per-seed values kept in every summary (the sweep scores plus the paper's two Figure 2 slopes).
SEED_SCORES = (*SWEEP, "slope_healthy", "slope_tumor")
BOUNDS = {
    **{s.name: s.bounds for s in SWEEP_SCORES},
    "slope_healthy": (-1.0, 1.0),
    "slope_tumor": (-1.0, 1.0),
    **{k: (0.0, 1.0) for k in FRACTION_SCORES},
}

RANK_DIGITS = 2  # scores equal to a percentage point are ties, ordered by the next score
RANKING_RULE = (
    "ranked by changed diagnoses (the mean over target fractions of the hallucination and erasure rates, "
    "halved; lower is better), then composition sensitivity, then mean absolute pixel error; changed "
    "diagnoses and sensitivity are compared to two decimals, so entries within a percentage point are "
    "ordered by the next score"
)


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else float(value)


def trend(ratios: Sequence[float], rates: Sequence[float | None]) -> dict[str, float | None]:
    """Slope of ``rates`` against ``ratios`` (least squares) and Spearman's rho, with p-values.

    Rates that do not change at all have slope exactly 0 and no p-value or rank correlation (null):
    fitting a line to equal floats returns round-off (about 1e-32) with p = 1, which would otherwise
    decide the order of tied entries."""
    empty = {"slope": None, "intercept": None, "slope_p": None, "spearman_rho": None, "spearman_p": None}
    pairs = [(x, y) for x, y in zip(ratios, rates) if y is not None]
    if len({x for x, _ in pairs}) < 2:
        return empty
    x, y = np.array(pairs, dtype=float).T
    if np.ptp(y) == 0:
        return {**empty, "slope": 0.0, "intercept": float(y[0])}
    fit = stats.linregress(x, y)
    rho = stats.spearmanr(x, y)
    return {
        "slope": _finite(fit.slope),
        "intercept": _finite(fit.intercept),
        "slope_p": _finite(fit.pvalue),
        "spearman_rho": _finite(rho.statistic),
        "spearman_p": _finite(rho.pvalue),
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

    def trend_of(score: str) -> dict[str, float | None]:
        return trend(ratios, [c["scores"][score] for c in cells])

    sweep = {
        "overall": trend_of("tumor_called"),
        "healthy_inputs": trend_of("tumor_called_healthy_inputs"),
        "tumor_inputs": trend_of("tumor_called_tumor_inputs"),
        "hallucination_trend": trend_of("hallucination"),
        "erasure_trend": trend_of("erasure"),
    }
    sweep["hallucination"] = _mean(c["scores"]["hallucination"] for c in cells)
    sweep["erasure"] = _mean(c["scores"]["erasure"] for c in cells)
    parts = [sweep["hallucination"], sweep["erasure"]]
    sweep["changed"] = None if None in parts else (parts[0] + parts[1]) / 2
    # The larger of the two slopes: a class already saturated (tumor inputs all called tumor) cannot
    # dilute the effect on the other, as an average of the two would.
    slopes = [sweep[k]["slope"] for k in ("hallucination_trend", "erasure_trend")]
    known = [abs(v) for v in slopes if v is not None]
    sweep["sensitivity"] = max(known) if known else None
    sweep["mean_flip_rate"] = _mean(c["scores"]["flip_rate"] for c in cells)
    sweep["mean_mae"] = _mean(c["scores"]["mae"] for c in cells)
    return sweep


def method_summary(cells: Sequence[dict]) -> dict[str, Any]:
    """The sweep scores with all seeds pooled, plus each seed's own values and their 95% confidence
    intervals (null when a single seed ran)."""
    summary = _sweep(cells)
    per_seed = []
    for seed in sorted({c["seed"] for c in cells}):
        s = _sweep([c for c in cells if c["seed"] == seed])
        per_seed.append(
            {
                "seed": seed,
                **{name: s[name] for name in SWEEP},
                "slope_healthy": s["healthy_inputs"]["slope"],
                "slope_tumor": s["tumor_inputs"]["slope"],
            }
        )
    summary["n_seeds"] = len(per_seed)
    summary["per_seed"] = per_seed
    summary["ci95"] = {name: interval((s[name] for s in per_seed), BOUNDS[name]) for name in SEED_SCORES}
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
    """:data:`RANKING_RULE` as a sort key; an undefined score sorts last."""

    def value(name: str, digits: int | None = None) -> float:
        v = summary[name]
        if v is None:
            return math.inf
        return round(v, digits) if digits is not None else v

    return (value("changed", RANK_DIGITS), value("sensitivity", RANK_DIGITS), value("mean_mae"))


def rank(summaries: dict[str, dict]) -> list[dict[str, Any]]:
    """Methods in :data:`RANKING_RULE` order (the method name breaks exact ties)."""
    ordered = sorted(summaries.items(), key=lambda item: (ranking_key(item[1]), item[0]))
    return [{"rank": i + 1, "method": name, **{s: summary[s] for s in SWEEP}} for i, (name, summary) in enumerate(ordered)]
