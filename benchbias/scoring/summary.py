"""A method's scores over the sweep (the verdict), per-fraction means, 95% confidence intervals over
seeds, and the leaderboard ranking.

The verdict answers what a translator's user fears: how often does translation change a diagnosis,
and how much does that depend on the composition of the training target? Per cell (:mod:`benchbias.scoring.metrics`) the
judge's call on each translation is compared with its call on the real target slice of the same
holdout slice; here those rates are averaged over the sweep of target tumor fractions and their
trend against the fraction is fitted. README, "What is measured", gives the formulas.

Only numpy and scipy: leaderboards, ``compare`` and ``check`` use this without importing torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy import stats

from benchbias.foundation.scoretable import Score, ScoreTable
from benchbias.scoring.dependence import dependence, worst_fraction
from benchbias.scoring.tolerances import CHECK_TOLERANCES

CONFIDENCE = 0.95


def derived_scores(cell_scores: ScoreTable) -> list[Score]:
    """The sweep scores computed here from the cell scores of ``cell_scores``: changed diagnoses and
    composition sensitivity, for the judge and (when the run has one) the second judge."""
    derived = []
    for suffix, judge in (("", "the judge"), ("_2", "the second judge")):
        if f"hallucination{suffix}" not in cell_scores or f"erasure{suffix}" not in cell_scores:
            continue
        first = suffix == ""
        label = "" if first else ", judge 2"
        derived += [
            Score(
                f"changed{suffix}",
                f"changed diagnoses{label}",
                f"mean over the sweep of (hallucination + erasure) / 2 by {judge}" + (": the primary score" if first else ""),
                level="sweep",
                verdict=first,
                tolerance=CHECK_TOLERANCES["changed"] if first else None,
            ),
            Score(
                f"sensitivity{suffix}",
                f"composition sensitivity{label}",
                f"the larger dependence score of hallucination and erasure on the target tumor fraction, by {judge}: their spread across "
                "the fractions beyond binomial noise, in slope units (docs/concepts/verdict.md)",
                level="sweep",
                bounds=(0.0, None),
                verdict=first,
                tolerance=CHECK_TOLERANCES["sensitivity"] if first else None,
            ),
            *(
                Score(
                    f"dependence_{rate}{suffix}",
                    f"dependence of {rate}{label}",
                    f"the dependence score of {rate} on the target tumor fraction, by {judge}",
                    level="sweep",
                    bounds=(0.0, None),
                )
                for rate in ("hallucination", "erasure")
            ),
            Score(
                f"changed_worst{suffix}",
                f"changed diagnoses, worst fraction{label}",
                f"the largest over target fractions of (hallucination + erasure) / 2 by {judge}, seeds pooled",
                level="sweep",
            ),
            Score(
                f"sensitivity_slope{suffix}",
                f"largest |slope|{label}",
                f"max(|slope| of hallucination, |slope| of erasure) against the target tumor fraction, by {judge} (descriptive; "
                "composition sensitivity before scoring version 2)",
                level="sweep",
                bounds=(None, None),
                better="neither",
            ),
        ]
    return derived


SLOPES = ("slope_healthy", "slope_tumor")  # the paper's two Figure 2 slopes, kept per seed
SLOPE_BOUNDS = (-1.0, 1.0)

# Bands set by the trained baselines of the same run or board (docs/concepts/verdict.md, "Flags").
MAE_BAND = 1.5
SSIM_BAND = 0.1
KAPPA_BAND = 0.5
SHIPPED_BASELINES = ("l1", "pix2pix", "condgan", "cyclegan", "gan")  # plugin names of the baselines benchbias ships

RANK_DIGITS = 2  # scores equal to a percentage point are ties, ordered by the next score
RANKING_RULE = (
    "ranked by changed diagnoses (the mean over target fractions of the hallucination and erasure rates, "
    "halved; lower is better) of the worst of the benchmark's judges, then the worst judge's composition "
    "sensitivity, then mean absolute pixel error; changed diagnoses and sensitivity are compared to two "
    "decimals, so entries within a percentage point are ordered by the next score. An entry is flagged, and "
    "ranked below every entry that is not, when its translations do not look like the target modality "
    f"(MAE above {MAE_BAND:g} x the trained baselines' median, or SSIM more than {SSIM_BAND:g} below their median) "
    f"or when its judges agree far less than on the baselines (Cohen's kappa below {KAPPA_BAND:g} x the baselines' median)"
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


def _present(scores: list[Score], cells: Sequence[dict]) -> list[Score]:
    """The cell scores that every cell has (a leaderboard entry made before a score existed lacks it)."""
    return [s for s in scores if s.level == "cell" and all(s.name in c["scores"] for c in cells)]


def _sweep(cells: Sequence[dict], table: ScoreTable) -> dict[str, Any]:
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
    for score in _present(table.sweep(), cells):
        sweep[score.name] = _mean(c["scores"][score.name] for c in cells)
    for suffix in ("", "_2"):
        if f"hallucination{suffix}" not in sweep or f"erasure{suffix}" not in sweep:
            continue
        parts = [sweep[f"hallucination{suffix}"], sweep[f"erasure{suffix}"]]
        sweep[f"changed{suffix}"] = None if None in parts else (parts[0] + parts[1]) / 2
        # The larger of the two classes: a class already saturated (tumor inputs all called tumor) cannot
        # dilute the effect on the other, as an average of the two would.
        slopes = [trend_of(f"{rate}{suffix}")["slope"] for rate in ("hallucination", "erasure")]
        known = [abs(v) for v in slopes if v is not None]
        sweep[f"sensitivity_slope{suffix}"] = max(known) if known else None
        for rate, count in (("hallucination", "n_healthy_inputs"), ("erasure", "n_tumor_inputs")):
            counts = [c["scores"].get(count) for c in cells]
            sweep[f"dependence_{rate}{suffix}"] = dependence(ratios, [c["scores"][f"{rate}{suffix}"] for c in cells], counts)
        known = [v for v in (sweep[f"dependence_{rate}{suffix}"] for rate in ("hallucination", "erasure")) if v is not None]
        sweep[f"sensitivity{suffix}"] = max(known) if known else None
        pairs = [(c["scores"][f"hallucination{suffix}"], c["scores"][f"erasure{suffix}"]) for c in cells]
        changed = [None if None in pair else (pair[0] + pair[1]) / 2 for pair in pairs]
        sweep[f"changed_worst{suffix}"] = worst_fraction(ratios, changed)
    return sweep


def _sweep_names(summary: dict[str, Any], table: ScoreTable) -> list[str]:
    return [s.name for s in table.sweep() if s.name in summary]


def method_summary(cells: Sequence[dict], table: ScoreTable) -> dict[str, Any]:
    """The sweep scores of ``table`` with all seeds pooled, plus each seed's own values and their 95%
    confidence intervals (null when a single seed ran)."""
    summary = _sweep(cells, table)
    names = _sweep_names(summary, table)
    per_seed = []
    for seed in sorted({c["seed"] for c in cells}):
        s = _sweep([c for c in cells if c["seed"] == seed], table)
        per_seed.append(
            {"seed": seed, **{name: s[name] for name in names}, "slope_healthy": s["healthy_inputs"]["slope"], "slope_tumor": s["tumor_inputs"]["slope"]}
        )
    summary["n_seeds"] = len(per_seed)
    summary["per_seed"] = per_seed
    bounds = {**{name: table[name].bounds for name in names}, **{name: SLOPE_BOUNDS for name in SLOPES}}
    summary["ci95"] = {name: interval((s[name] for s in per_seed), bounds[name]) for name in (*names, *SLOPES)}
    return summary


def per_fraction(cells: Sequence[dict], table: ScoreTable) -> list[dict[str, Any]]:
    """Each target fraction's scores averaged over seeds, with 95% intervals over seeds."""
    shown = _present(table.per_fraction(), cells)
    rows = []
    for ratio in sorted({c["ratio"] for c in cells}):
        at = [c["scores"] for c in cells if c["ratio"] == ratio]
        rows.append(
            {
                "ratio": ratio,
                "n_seeds": len(at),
                "mean": {k.name: _mean(s[k.name] for s in at) for k in shown},
                "ci95": {k.name: interval((s[k.name] for s in at), k.bounds) for k in shown},
            }
        )
    return rows


def fmt(value: float | None, digits: int = 3) -> str:
    """A score for a table: fixed digits, "n/a" when undefined."""
    return "n/a" if value is None else f"{value:.{digits}f}"


def fmt_ci(value: float | None, ci: list[float] | None, digits: int = 3) -> str:
    """A score followed by its confidence interval in brackets, when it has one."""
    return fmt(value, digits) + (f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else "")


def worst_judge(summary: dict[str, Any], name: str) -> float | None:
    """The worst of the judges' values of ``name`` (``name`` and ``name_2``): an entry made to please
    one judge is ranked by the judge it did not please. Undefined when the first judge's is."""
    values = [summary.get(name), summary.get(f"{name}_2")]
    if values[0] is None:
        return None
    return max(v for v in values if v is not None)


def ranking_key(summary: dict[str, Any], suffix: str = "") -> tuple[float, float, float]:
    """:data:`RANKING_RULE` as a sort key (without the flags); an undefined score sorts last. ``suffix``
    "_2": the same rule applied to the second judge's scores alone."""

    def value(v: float | None, digits: int | None = None) -> float:
        if v is None:
            return math.inf
        return round(v, digits) if digits is not None else v

    if suffix:
        changed, sensitivity = summary[f"changed{suffix}"], summary[f"sensitivity{suffix}"]
    else:
        changed, sensitivity = worst_judge(summary, "changed"), worst_judge(summary, "sensitivity")
    return (value(changed, RANK_DIGITS), value(sensitivity, RANK_DIGITS), value(summary["mae"]))


def reference_methods(methods: dict[str, dict[str, Any]]) -> list[str]:
    """The names of ``methods`` (results methods or leaderboard entries, by name) that are baselines
    shipped with benchbias: their plugin is one of :data:`SHIPPED_BASELINES` from the benchbias distribution."""
    return [name for name, m in methods.items() if m.get("plugin") in SHIPPED_BASELINES and (m.get("origin") or {}).get("distribution") == "benchbias"]


def _median(values: Iterable[float | None]) -> float | None:
    v = [x for x in values if x is not None]
    return float(np.median(v)) if v else None


def flags(summaries: dict[str, dict[str, Any]], references: Sequence[str]) -> dict[str, list[str]]:
    """Why each entry is flagged (empty when it is not), against bands set by the ``references``
    (the trained baselines among them); no references: no flags."""
    refs = [summaries[m] for m in references if m in summaries]
    mae, ssim, kappa = (_median(s.get(k) for s in refs) for k in ("mae", "ssim", "kappa"))
    found: dict[str, list[str]] = {}
    for name, s in summaries.items():
        why = []
        if mae is not None and s.get("mae") is not None and s["mae"] > MAE_BAND * mae:
            why.append(f"MAE {s['mae']:.3f} above {MAE_BAND:g} x the baselines' median {mae:.3f}")
        if ssim is not None and s.get("ssim") is not None and s["ssim"] < ssim - SSIM_BAND:
            why.append(f"SSIM {s['ssim']:.2f} more than {SSIM_BAND:g} below the baselines' median {ssim:.2f}")
        if kappa is not None and s.get("kappa") is not None and s["kappa"] < KAPPA_BAND * kappa:
            why.append(f"judges' kappa {s['kappa']:.2f} below {KAPPA_BAND:g} x the baselines' median {kappa:.2f}")
        found[name] = why
    return found


def order(summaries: dict[Any, dict[str, Any]], references: Sequence[Any] = (), suffix: str = "", tie=lambda key: key) -> list[Any]:
    """The keys of ``summaries`` in :data:`RANKING_RULE` order: unflagged entries first; ``tie`` maps a
    key to what breaks exact ties."""
    flagged = flags(summaries, references)
    return sorted(summaries, key=lambda k: (bool(flagged[k]), ranking_key(summaries[k], suffix), tie(k)))


RANKED_BY = ("changed", "sensitivity", "mae")  # every summary has these: the schema requires them
# The cell scores the verdict is computed from: every cell has them (the schema requires them).
VERDICT_INPUTS = ("tumor_called", "tumor_called_healthy_inputs", "tumor_called_tumor_inputs", "hallucination", "erasure", "flip_rate", "mae")


def rank(summaries: dict[str, dict], suffix: str = "", references: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Methods in :data:`RANKING_RULE` order (the method name breaks exact ties), each with its flags."""
    flagged = flags(summaries, references)
    keys = [f"changed{suffix}", f"sensitivity{suffix}", "mae"]
    return [
        {"rank": i + 1, "method": name, **{k: summaries[name].get(k) for k in keys}, "flags": flagged[name]}
        for i, name in enumerate(order(summaries, references, suffix))
    ]
