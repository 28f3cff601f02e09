"""The paper's Figure 2 findings as four checkable claims, evaluated on the cells of a run or a leaderboard.

Cohen, Luck & Honari (MICCAI 2018) trained CycleGAN, CondGAN and L1 at 11 target tumor fractions r
and had a classifier call every translated holdout slice tumor or healthy. What they read in Figure 2
becomes four claims on the baselines' cells (the thresholds are benchbias's, each beside its reason):

* c1: CycleGAN's tumor-called rate on healthy inputs rises with r;
* c2: CycleGAN has the largest composition sensitivity of the three;
* c3: L1's calls on healthy inputs stay flat;
* c4: L1 errs on tumor inputs (pixel error) only when trained on 0% tumor.

A benchmark carries the claims when its file says ``paper_claims: true``; a run or leaderboard of such
a benchmark that has the three baselines (by plugin name) gets them in ``results.json``, the report,
the ``benchbias run`` and ``selftest`` output and the leaderboard page. ``benchbias claims PATH`` (:mod:`benchbias.cli.results`)
evaluates them on any results file, run folder or leaderboard, pooled over seeds and per seed.

Only numpy and scipy (through :mod:`benchbias.scoring.summary`): it reads files without importing torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchbias.foundation.scoretable import ScoreTable
from benchbias.scoring.summary import method_summary, trend

PAPER = "Cohen, Luck & Honari, MICCAI 2018, Figure 2"
# Raised whenever a claim's definition or threshold changes: a file whose section an earlier definition
# computed is recomputed on read (the section is derived from the cells), not refused as edited.
# 1: the first four claims; 2: c4 on the pixel error of tumor inputs.
DEFINITION = 2
BASELINES = ("cyclegan", "condgan", "l1")  # the paper's three translators, by plugin name
EPSILON = 1e-9  # rates are shares of slices averaged over seeds: compare to thresholds up to round-off

# c1. "For CycleGAN, we observe that the percentage of the images diagnosed with tumors increases as
# the percentage of tumor images in the target distribution increases": an increase across the whole
# sweep, so the per-fraction rates must be close to monotone in r (rank correlation near 1) ...
C1_MIN_RHO = 0.9
# ... and CycleGAN "produces the most dramatic change in class labels": a large change, not a drift. At
# least 40 points between the two lowest and the two highest fractions (two each, so that one noisy
# end point neither makes nor breaks the claim).
C1_MIN_RISE = 0.4
# c2. CycleGAN "produces the most dramatic change in class labels" of the three models: its composition
# sensitivity (benchbias's sweep score for how much r drives the calls) is the largest. No threshold.
# c3. "L1 loss seem to suffer the least from target distribution matching" and "Perceptually the L1 loss
# appears the most consistent producing the least bias": on healthy inputs its tumor-called rate may
# move by at most 10 points over the whole sweep.
C3_MAX_SPREAD = 0.10
# c4. "L1 loss seem to suffer the least from target distribution matching and produces high error only when
# the target distribution has 0% of tumors (during training) and is asked to translate tumor samples. This
# case corresponds to 0% L1 on the bottom row." (Figure 2's caption, in its passage on the pixel error, the
# figure's black line) and "it has error when it is trained on 0% tumor and the model is asked to translate
# tumor samples at test time ... due to a mis-match between train and test distributions" (Section 3).
# "High error" at r = 0: L1's pixel error on the tumor inputs is at least 1.2 times its largest at any r >=
# 0.2 (a fraction's MAE moves by 2-3% between seeds, so 1.2 times is far beyond noise). Whether the judge
# also loses the tumor call there is reported beside it (erasure at r = 0), not required: the paper's bars
# show it, but a converged L1 on the synthetic data keeps most tumors recognisable while translating them
# wrongly (docs/results/convergence.md) ...
C4_MIN_ERROR_RATIO = 1.2
# ... and "only" then: from r = 0.2 on, erasure stays within 15 points of erasure at r = 1 (where the
# training target has the most tumors to learn from; 15 points allows for seed noise, not a trend).
# r = 0.1 is left out: a target with a tenth of tumor slices is the transition from the failing case,
# which the paper does not single out either way.
C4_FROM_FRACTION = 0.2
C4_MARGIN = 0.15

HEALTHY_RATE = "tumor_called_healthy_inputs"
ERASURE = "erasure"
TUMOR_INPUT_ERROR = "mae_tumor_inputs"


@dataclass(frozen=True)
class Claim:
    """One claim: what is checked, the paper's words it stands for, and the baselines it needs."""

    id: str
    statement: str
    paper: str
    needs: tuple[str, ...]


CLAIMS = (
    Claim(
        "c1",
        "CycleGAN's tumor calls on healthy inputs rise with r",
        "For CycleGAN, we observe that the percentage of the images diagnosed with tumors increases as the percentage "
        "of tumor images in the target distribution increases.",
        ("cyclegan",),
    ),
    Claim(
        "c2",
        "CycleGAN is the most composition-sensitive of the three",
        "We draw the readers attention to CycleGAN which produces the most dramatic change in class labels.",
        BASELINES,
    ),
    Claim(
        "c3",
        "L1's tumor calls on healthy inputs stay flat",
        "L1 loss seem to suffer the least from target distribution matching.",
        ("l1",),
    ),
    Claim(
        "c4",
        "L1 errs on tumor inputs only when trained on 0% tumor",
        "L1 loss ... produces high error only when the target distribution has 0% of tumors (during training) and is asked to translate tumor samples.",
        ("l1",),
    ),
)


@dataclass(frozen=True)
class ClaimResult:
    """A claim evaluated on some cells: whether it holds, the measured figures and a one-line detail.
    ``evaluated`` is False when the cells lack what the claim needs (``holds`` is then False too)."""

    id: str
    statement: str
    paper: str
    holds: bool
    figures: dict[str, Any] = field(default_factory=dict)
    detail: str = ""
    evaluated: bool = True

    @property
    def verdict(self) -> str:
        return "holds" if self.holds else ("fails" if self.evaluated else "not evaluated")

    @property
    def measured(self) -> str:
        """The detail without the claim's id and statement, and without the verdict at its end."""
        text = self.detail.removeprefix(f"{self.id} {self.statement}: ")
        return text.removesuffix(f" — {self.verdict}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "statement": self.statement,
            "paper": self.paper,
            "holds": self.holds,
            "evaluated": self.evaluated,
            "figures": self.figures,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClaimResult:
        return cls(data["id"], data["statement"], data["paper"], data["holds"], data["figures"], data["detail"], data["evaluated"])


# ---- evaluating -----------------------------------------------------------------------------------


def _result(claim: Claim, holds: bool, figures: dict[str, Any], measured: str) -> ClaimResult:
    verdict = "holds" if holds else "fails"
    return ClaimResult(claim.id, claim.statement, claim.paper, bool(holds), figures, f"{claim.id} {claim.statement}: {measured} — {verdict}")


def not_evaluated(claim: Claim, why: str) -> ClaimResult:
    return ClaimResult(claim.id, claim.statement, claim.paper, False, {}, f"{claim.id} {claim.statement}: not evaluated: {why}", evaluated=False)


def _by_fraction(cells: Sequence[dict], score: str) -> tuple[list[float], list[float | None]]:
    """The target fractions, ascending, and the mean of ``score`` over the cells (seeds) at each;
    None where every cell's value is null."""
    ratios = sorted({float(c["ratio"]) for c in cells})
    means = []
    for ratio in ratios:
        values = [c["scores"].get(score) for c in cells if float(c["ratio"]) == ratio]
        present = [v for v in values if v is not None]
        means.append(float(np.mean(present)) if present else None)
    return ratios, means


def _undefined(ratios: list[float], values: list[float | None], what: str) -> str | None:
    missing = [f"{r:g}" for r, v in zip(ratios, values) if v is None]
    return f"{what} is undefined at r = {', '.join(missing)}" if missing else None


def _ge(value: float, threshold: float) -> bool:
    return value >= threshold - EPSILON


def _le(value: float, threshold: float) -> bool:
    return value <= threshold + EPSILON


def _cmp(value: float, threshold: float, at_least: bool) -> str:
    ok = _ge(value, threshold) if at_least else _le(value, threshold)
    sign = (">=" if ok else "<") if at_least else ("<=" if ok else ">")
    return f"{value:.2f} {sign} {threshold:g}"


def claim_c1(cells: Sequence[dict]) -> ClaimResult:
    claim = CLAIMS[0]
    ratios, rates = _by_fraction(cells, HEALTHY_RATE)
    if len(ratios) < 3:
        return not_evaluated(claim, f"needs at least 3 target fractions, the cells have {len(ratios)}")
    problem = _undefined(ratios, rates, "CycleGAN's tumor-called rate on healthy inputs")
    if problem:
        return not_evaluated(claim, problem)
    rho = trend(ratios, rates)["spearman_rho"]  # None when the rate does not change at all
    low, high = float(np.mean(rates[:2])), float(np.mean(rates[-2:]))
    rise = high - low
    rho_ok = rho is not None and _ge(rho, C1_MIN_RHO)
    rho_text = _cmp(rho, C1_MIN_RHO, True) if rho is not None else f"n/a (the same rate at every r) < {C1_MIN_RHO:g}"
    figures = {"ratios": ratios, "rates": rates, "spearman_rho": rho, "rise": rise, "lowest_two": low, "highest_two": high}
    return _result(claim, rho_ok and _ge(rise, C1_MIN_RISE), figures, f"rho {rho_text}, rise {_cmp(rise, C1_MIN_RISE, True)}")


def claim_c2(cells_by_baseline: dict[str, Sequence[dict]], table: ScoreTable | None) -> ClaimResult:
    claim = CLAIMS[1]
    sensitivity = {name: method_summary(cells_by_baseline[name], table)["sensitivity"] for name in BASELINES}
    undefined = [name for name, value in sensitivity.items() if value is None]
    if undefined:
        return not_evaluated(claim, f"composition sensitivity is undefined for {', '.join(undefined)}")
    mine = sensitivity["cyclegan"]
    rivals = {name: value for name, value in sensitivity.items() if name != "cyclegan"}
    holds = all(mine > value for value in rivals.values())
    listed = ", ".join(f"{name} {value:.2f}" for name, value in rivals.items())
    measured = f"sensitivity {mine:.2f} > {listed}" if holds else f"sensitivity {mine:.2f}, not above {listed}"
    return _result(claim, holds, {"sensitivity": sensitivity}, measured)


def claim_c3(cells: Sequence[dict]) -> ClaimResult:
    claim = CLAIMS[2]
    ratios, rates = _by_fraction(cells, HEALTHY_RATE)
    if len(ratios) < 2:
        return not_evaluated(claim, f"needs at least 2 target fractions, the cells have {len(ratios)}")
    problem = _undefined(ratios, rates, "L1's tumor-called rate on healthy inputs")
    if problem:
        return not_evaluated(claim, problem)
    low, high = min(rates), max(rates)
    spread = high - low
    figures = {"ratios": ratios, "rates": rates, "spread": spread, "lowest": low, "highest": high}
    at = f"{low:.2f} at every r" if spread == 0 else f"{low:.2f} at r = {ratios[rates.index(low)]:g}, {high:.2f} at r = {ratios[rates.index(high)]:g}"
    return _result(claim, _le(spread, C3_MAX_SPREAD), figures, f"max - min over r {_cmp(spread, C3_MAX_SPREAD, False)} ({at})")


def claim_c4(cells: Sequence[dict]) -> ClaimResult:
    claim = CLAIMS[3]
    ratios, erasure = _by_fraction(cells, ERASURE)
    _, error = _by_fraction(cells, TUMOR_INPUT_ERROR)
    if 0.0 not in ratios or 1.0 not in ratios:
        return not_evaluated(claim, "needs the target fractions 0 and 1")
    later = [i for i, r in enumerate(ratios) if _ge(r, C4_FROM_FRACTION)]
    checked = [0, *later]
    problem = _undefined([ratios[i] for i in checked], [erasure[i] for i in checked], "L1's erasure") or _undefined(
        [ratios[i] for i in checked], [error[i] for i in checked], "L1's pixel error on tumor inputs"
    )
    if problem:
        return not_evaluated(claim, problem)
    at_one = erasure[ratios.index(1.0)]
    ceiling = at_one + C4_MARGIN
    worst = max(later, key=lambda i: erasure[i])
    error_elsewhere = max(later, key=lambda i: error[i])
    ratio = error[0] / error[error_elsewhere] if error[error_elsewhere] > 0 else float("inf")
    figures = {
        "ratios": ratios,
        "erasure": erasure,
        "error": error,
        "at_zero": erasure[0],
        "at_one": at_one,
        "ceiling": ceiling,
        "from_fraction": C4_FROM_FRACTION,
        "worst_from_fraction": erasure[worst],
        "worst_ratio": ratios[worst],
        "error_at_zero": error[0],
        "error_elsewhere": error[error_elsewhere],
        "error_ratio": ratio,
    }
    holds = _ge(ratio, C4_MIN_ERROR_RATIO) and _le(erasure[worst], ceiling)
    measured = (
        f"pixel error on tumor inputs at r = 0 {error[0]:.4f} = {ratio:.2f}x its largest at r >= {C4_FROM_FRACTION:g} "
        f"({error[error_elsewhere]:.4f}, r = {ratios[error_elsewhere]:g}; needs >= {C4_MIN_ERROR_RATIO:g}x); erasure at r >= {C4_FROM_FRACTION:g} "
        f"at most {erasure[worst]:.2f} (r = {ratios[worst]:g}) {'<=' if _le(erasure[worst], ceiling) else '>'} {ceiling:.2f} "
        f"(erasure at r = 1 {at_one:.2f} + {C4_MARGIN:g}); erasure at r = 0 {erasure[0]:.2f}"
    )
    return _result(claim, holds, figures, measured)


def evaluate(cells_by_method: dict[str, list[dict]], table: ScoreTable | None = None) -> list[ClaimResult]:
    """The four claims on ``cells_by_method`` (keyed by the baselines' plugin names: cyclegan, condgan,
    l1; other keys are ignored), every seed present pooled. ``table``: the score table the cells were
    scored with (default: benchbias's own, which imports torch). A claim whose baselines are missing
    is not evaluated, and says which it needs."""
    present = {name: cells for name, cells in cells_by_method.items() if name in BASELINES and cells}
    checks: dict[str, Callable[[], ClaimResult]] = {
        "c1": lambda: claim_c1(present["cyclegan"]),
        "c2": lambda: claim_c2(present, table),
        "c3": lambda: claim_c3(present["l1"]),
        "c4": lambda: claim_c4(present["l1"]),
    }
    results = []
    for claim in CLAIMS:
        missing = [name for name in claim.needs if name not in present]
        if missing:
            results.append(not_evaluated(claim, f"needs {', '.join(claim.needs)} (missing: {', '.join(missing)})"))
        else:
            results.append(checks[claim.id]())
    return results


def evaluate_per_seed(cells_by_method: dict[str, list[dict]], table: ScoreTable | None = None) -> dict[int, list[ClaimResult]]:
    """:func:`evaluate` on each seed's cells alone, by seed."""
    seeds = sorted({c["seed"] for cells in cells_by_method.values() for c in cells})
    return {seed: evaluate({name: [c for c in cells if c["seed"] == seed] for name, cells in cells_by_method.items()}, table) for seed in seeds}


def holding(claims: Sequence[ClaimResult]) -> int:
    return sum(c.holds for c in claims)


def summary_line(claims: Sequence[ClaimResult]) -> str:
    """'paper claims: 3 of 4 hold' (and how many could not be evaluated)."""
    unevaluated = sum(not c.evaluated for c in claims)
    return f"paper claims: {holding(claims)} of {len(claims)} hold" + (f" ({unevaluated} not evaluated)" if unevaluated else "")


# ---- results files and leaderboards -----------------------------------------------------------------
