"""``benchbias selftest``: does a benchmark catch the cheats it must catch?

The canary translators (``plugins/canaries.py``) run beside the benchmark's own methods, and each
property below is checked on the ranked results. Someone defining a benchmark on their own data runs
this first: a benchmark whose verdict a canary can game is not ready for a leaderboard.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchbias.foundation.config import Benchmark, ConfigError, ModelConfig
from benchbias.foundation.registry import Registry
from benchbias.foundation.scoretable import ScoreTable
from benchbias.judges.pinned import JudgeFiles
from benchbias.leaderboard.compare import Scored, check, parse_tolerances

PAINTER, ERASER, FIXED_MAP, PROPORTIONAL, SAMPLER, BUMP, SABOTAGED, PGD_IDENTITY, ATTACKED_SAMPLER = (
    "canary-painter",
    "canary-eraser",
    "canary-fixed-map",
    "canary-proportional-painter",
    "canary-sampler",
    "canary-bump-painter",
    "canary-sabotaged-l1",
    "canary-pgd-identity",
    "canary-attacked-sampler",
)
CANARIES = (PAINTER, ERASER, FIXED_MAP, PROPORTIONAL, SAMPLER, BUMP, SABOTAGED, PGD_IDENTITY, ATTACKED_SAMPLER)
ATTACKERS = (PGD_IDENTITY, ATTACKED_SAMPLER)  # they read the benchmark's committed judge


@dataclass(frozen=True)
class Verdict:
    claim: str
    passed: bool
    detail: str

    def line(self) -> str:
        return f"[{'caught' if self.passed else 'MISSED'}] {self.claim}: {self.detail}"


def with_canaries(bench: Benchmark, registry: Registry) -> Benchmark:
    """``bench`` plus one method per canary. The canaries built on a trained network take the network
    size of the benchmark's first method that has one, so they train at the benchmark's scale."""
    clash = [m.name for m in bench.methods if m.name in CANARIES]
    if clash:
        raise ConfigError(f"{bench.source_file}: methods.{clash[0]}: a benchmark method may not use a canary's name")
    if not bench.training_steps:
        raise ConfigError(f"{bench.source_file}: training.steps: is required by selftest (the canaries' step budget)")
    sized = next((m.params for m in bench.methods if "filters" in m.params), {})
    # The attackers hold what any method author holds: the benchmark's committed judge. A benchmark
    # whose judge is trained at run time (not committed) has no public weights to attack.
    public = JudgeFiles.beside(Path(bench.source_file), bench.name) if bench.source_file else None
    canaries = []
    for name in CANARIES:
        declared = registry.get("translator", name).cls.params
        params = {k: v for k, v in sized.items() if k in declared}
        if name in ATTACKERS:
            if public is None or not public.exist():
                continue
            params["judge_weights"] = str(public.weights)
        canaries.append(ModelConfig(name, name, params, bench.training_steps))
    return dataclasses.replace(bench, methods=bench.methods + tuple(canaries))


def _rank(results: dict[str, Any], ranking: str = "ranking") -> dict[str, int]:
    return {row["method"]: row["rank"] for row in results[ranking]}


def _exceeds(results: dict[str, Any], canary: str, score: str, references: list[str]) -> Verdict:
    """The canary's sweep value of ``score`` is larger than every reference method's."""
    mine = _summary(results, canary).get(score)
    rivals = {m: _summary(results, m).get(score) for m in references}
    rivals = {m: v for m, v in rivals.items() if v is not None}
    top = max(rivals, key=rivals.get) if rivals else None
    passed = mine is not None and bool(rivals) and all(mine > v for v in rivals.values())
    return Verdict("", passed, f"{score} {mine:.3f}; highest of the methods: {top} {rivals[top]:.3f}" if top and mine is not None else f"{score} {mine}")


def _below(results: dict[str, Any], canary: str, references: list[str], ranking: str = "ranking") -> Verdict:
    ranks = _rank(results, ranking)
    above = [m for m in references if ranks[m] > ranks[canary]]
    detail = f"rank {ranks[canary]} of {len(ranks)}"
    detail += f"; ranks above {', '.join(above)}" if above else f"; below {', '.join(references) or 'no reference method'}"
    return Verdict("", bool(references) and not above, detail)


def _flagged_below(results: dict[str, Any], canary: str, references: list[str]) -> Verdict:
    found = _below(results, canary, references)
    flags = next(row.get("flags", []) for row in results["ranking"] if row["method"] == canary)
    return Verdict("", found.passed and bool(flags), found.detail + (f"; flagged: {'; '.join(flags)}" if flags else "; not flagged"))


def _seen_and_below(results: dict[str, Any], canary: str, score: str, references: list[str]) -> Verdict:
    seen, below = _exceeds(results, canary, score, references), _below(results, canary, references)
    return Verdict("", seen.passed and below.passed, f"{seen.detail}; {below.detail}")


def _summary(results: dict[str, Any], method: str) -> dict[str, Any]:
    return results["methods"][method]["summary"]


def properties(results: dict[str, Any], references: list[str]) -> list[Verdict]:
    """The claims every benchmark must satisfy, checked on one run's results."""
    paired = [m for m in references if results["methods"][m]["paired"]]
    verdicts = []

    def claim(text: str, check: Callable[[], Verdict]) -> None:
        verdicts.append(dataclasses.replace(check(), claim=text))

    claim("a constant painter (a lesion in every output) ranks below every method", lambda: _below(results, PAINTER, references))
    claim("a constant eraser (every source-bright region filled in) ranks below every method", lambda: _below(results, ERASER, references))
    claim("a translator that ignores its input ranks below every paired method", lambda: _below(results, SAMPLER, paired))

    def proportional() -> Verdict:
        mine = _summary(results, PROPORTIONAL)["sensitivity"]
        rivals = {m: _summary(results, m)["sensitivity"] for m in references}
        rivals = {m: v for m, v in rivals.items() if v is not None}
        top = max(rivals, key=rivals.get) if rivals else None
        passed = mine is not None and bool(rivals) and all(mine > v for v in rivals.values())
        return Verdict("", passed, f"sensitivity {mine:.3f}; highest of the methods: {top} {rivals[top]:.3f}" if top else f"sensitivity {mine}")

    claim("a painter that follows the training target's tumor share is more composition-sensitive than every method", proportional)

    def data_independent() -> Verdict:
        method = results["methods"][FIXED_MAP]
        summary = method["summary"]
        means = [row["mean"] for row in method["per_fraction"]]
        varying = [k for k in means[0] if len({m.get(k) for m in means}) > 1]
        passed = summary["sensitivity"] == 0.0 and not varying and summary["hallucination_trend"]["slope_p"] is None
        detail = f"sensitivity {summary['sensitivity']!r}, slope p-value {summary['hallucination_trend']['slope_p']!r}"
        detail += f"; scores differ across fractions: {', '.join(varying)}" if varying else "; identical scores at every fraction"
        return Verdict("", passed, detail)

    claim("a data-independent translator has composition sensitivity exactly 0", data_independent)

    def bump() -> Verdict:
        found = _exceeds(results, BUMP, "dependence_hallucination", references)
        slope = _summary(results, BUMP)["hallucination_trend"]["slope"]
        return dataclasses.replace(found, detail=found.detail + (f"; its hallucination slope {slope:+.3f}" if slope is not None else ""))

    claim("a painter whose painting rises and falls back with the training target's tumor share depends on it more than every method", bump)
    if PGD_IDENTITY in results["methods"]:
        claim(
            "a FLAIR copy nudged by gradient steps on the public judge (PGD) is flagged as unlike the target and ranks below every method",
            lambda: _flagged_below(results, PGD_IDENTITY, references),
        )
    if ATTACKED_SAMPLER in results["methods"]:
        claim(
            "a distribution matcher attacked on the first judge changes more diagnoses by the second judge than every paired method, and ranks below them",
            lambda: _seen_and_below(results, ATTACKED_SAMPLER, "changed_2", paired),
        )
    if "l1" in references:
        claim("`check` fails an L1 that paints lesions on a share r/5 of its healthy outputs, against the run's own L1", lambda: sabotage_checked(results))

    # The extra judges, when the benchmark has them, must see the same cheats.
    if "area_added" in _summary(results, PAINTER):
        claim(
            "the segmentation judge measures more tumor area added by the painter than by every method",
            lambda: _exceeds(results, PAINTER, "area_added", references),
        )
        claim(
            "the segmentation judge measures more tumor area removed by the eraser than by every method",
            lambda: _exceeds(results, ERASER, "area_removed", references),
        )
    if "ranking_2" in results:
        claim("under the second judge too, the constant painter ranks below every method", lambda: _below(results, PAINTER, references, "ranking_2"))
        claim("under the second judge too, the constant eraser ranks below every method", lambda: _below(results, ERASER, references, "ranking_2"))
    return verdicts


def sabotage_checked(results: dict[str, Any]) -> Verdict:
    """``benchbias check`` of the sabotaged L1, standing in for l1, against the run's own l1."""
    table = ScoreTable.from_json(results["score_table"])
    l1 = results["methods"]["l1"]

    def scored(method: dict[str, Any], where: str) -> Scored:
        entry = {**method, "method": "l1", "version": l1["version"]}
        ids = (results["benchmark"]["name"], results["benchmark"]["protocol_hash"], results["dataset"]["fingerprint"], results["classifier"]["sha256"])
        return Scored(Path(where), "results", *ids, {"l1": [entry]}, table)

    outcome = check(scored(results["methods"][SABOTAGED], SABOTAGED), scored(l1, "l1"), parse_tolerances([], table))
    worse = [w.removeprefix("l1 ") for w in outcome.worse]
    return Verdict("", not outcome.passed, f"check FAILED on {', '.join(worse)}" if worse else "check passed")
