"""Read files written by an earlier benchbias: each older schema is upgraded in memory, on read.

``benchbias.results/3`` -> ``/4`` and ``benchbias.leaderboard/2`` -> ``/3`` (the score table):

* the file gains ``score_table``: the scores its cells have, which were the judge's calls and the
  pixel errors (:class:`benchbias.scoring.metrics.JudgeCalls`, :class:`benchbias.scoring.metrics.PixelDifference`);
* in method summaries (and their per-seed values, intervals and the ranking) the sweep means
  ``mean_flip_rate`` and ``mean_mae`` are renamed after their cell scores, ``flip_rate`` and ``mae``;
  validation then recomputes the summaries from the cells, so a hand-edited old file is still caught;
* per-fraction rows are recomputed from the cells (they now hold every per-fraction score);
* cells keep their scores; they have no bootstrap intervals (``ci95``) and none of the newer scores
  (SSIM, PSNR, the segmentation judge's areas, the second judge's rates): tables show those as n/a.

``benchbias.results/4`` -> ``/5`` and ``benchbias.leaderboard/3`` -> ``/4`` (scoring version 2: composition
sensitivity is a dependence score, every judge counts in the ranking):

* the sweep scores' rows of the score table are today's (:func:`benchbias.scoring.summary.derived_scores`);
* the stored ``sensitivity`` (a largest |slope|) becomes ``sensitivity_slope``, the same number under
  its new name, so a hand edit is still caught; the new sweep scores (``sensitivity``, the dependence
  of each class, ``changed_worst``) are computed from the cells, as are the intervals of both sensitivities;
* a results file's ranking, ranking rule and paper claims are recomputed; a leaderboard's ranking rule is today's.

The stored file is not rewritten; ``benchbias leaderboard render`` (or any submit) writes a leaderboard
back in the current schema.
"""

from __future__ import annotations

from typing import Any

from benchbias.foundation.scoretable import ScoreTable
from benchbias.records.schemas import LEADERBOARD_SCHEMA, RESULTS_SCHEMA
from benchbias.scoring.claims_section import section as claims_section
from benchbias.scoring.summary import RANKING_RULE, derived_scores, method_summary, per_fraction, rank, reference_methods

RESULTS_PREVIOUS = "benchbias.results/4"
LEADERBOARD_PREVIOUS = "benchbias.leaderboard/3"
RESULTS_OLDER = "benchbias.results/3"
LEADERBOARD_OLDER = "benchbias.leaderboard/2"
SLOPE_RENAMED = {"sensitivity": "sensitivity_slope", "sensitivity_2": "sensitivity_slope_2"}


def _table_of_schema_3():
    from benchbias.scoring.metrics import JudgeCalls, PixelDifference, score_table  # torch: only to read an old file

    return score_table([JudgeCalls(), PixelDifference()])


RENAMED = {"mean_flip_rate": "flip_rate", "mean_mae": "mae"}


def _renamed(row: dict[str, Any]) -> dict[str, Any]:
    return {RENAMED.get(k, k): v for k, v in row.items()}


def _recompute(method: dict[str, Any], table) -> None:
    summary = _renamed(method["summary"])
    summary["per_seed"] = [_renamed(row) for row in summary["per_seed"]]
    summary["ci95"] = _renamed(summary["ci95"])
    method["summary"] = summary
    method["per_fraction"] = per_fraction(method["cells"], table)


def _to_scoring_2(method: dict[str, Any], table: ScoreTable) -> None:
    summary = {SLOPE_RENAMED.get(k, k): v for k, v in method["summary"].items()}
    computed = method_summary(method["cells"], table)
    summary["per_seed"] = [{SLOPE_RENAMED.get(k, k): v for k, v in row.items()} for row in summary["per_seed"]]
    for row, fresh in zip(summary["per_seed"], computed["per_seed"]):
        for k, v in fresh.items():
            row.setdefault(k, v)
    summary["ci95"] = {k: v for k, v in summary["ci95"].items() if k not in SLOPE_RENAMED}
    for k, v in computed.items():
        summary.setdefault(k, v)
    for k, v in computed["ci95"].items():
        summary["ci95"].setdefault(k, v)
    method["summary"] = summary


def _scoring_2_table(rows: Any) -> ScoreTable:
    cell = ScoreTable(s for s in ScoreTable.from_json(rows) if s.level == "cell")
    return ScoreTable([*derived_scores(cell), *cell])


def _upgrade_older(data: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """A results/3 or leaderboard/2 file as results/4 or leaderboard/3; None when damaged."""
    table = _table_of_schema_3()
    try:
        if kind == "results":
            for method in data["methods"].values():
                _recompute(method, table)
            data["ranking"] = [_renamed(row) for row in data["ranking"]]
            return {**data, "schema": RESULTS_PREVIOUS, "score_table": table.to_json()}
        for entry in data["entries"]:
            _recompute(entry, table)
        return {**data, "schema": LEADERBOARD_PREVIOUS, "score_table": table.to_json()}
    except (KeyError, TypeError, AttributeError):
        return None


def upgrade(data: Any, kind: str, source: str) -> Any:
    """``data`` in the current schema when it is in a previous one; anything else unchanged (the
    schema check then says what is wrong with it)."""
    if not isinstance(data, dict):
        return data
    older = {"results": (RESULTS_OLDER, "methods", dict), "leaderboard": (LEADERBOARD_OLDER, "entries", list)}[kind]
    if data.get("schema") == older[0] and isinstance(data.get(older[1]), older[2]):
        data = _upgrade_older(data, kind) or data
    previous = {"results": RESULTS_PREVIOUS, "leaderboard": LEADERBOARD_PREVIOUS}[kind]
    if data.get("schema") != previous or not isinstance(data.get(older[1]), older[2]):
        return data
    try:
        table = _scoring_2_table(data["score_table"])
        methods = data["methods"] if kind == "results" else {i: e for i, e in enumerate(data["entries"])}
        for method in methods.values():
            _to_scoring_2(method, table)
    except (KeyError, TypeError, AttributeError, ValueError):
        return data  # damaged: the schema check names the problem
    upgraded = {**data, "schema": RESULTS_SCHEMA if kind == "results" else LEADERBOARD_SCHEMA, "score_table": table.to_json(), "ranking_rule": RANKING_RULE}
    if kind == "results":
        summaries, references = {n: m["summary"] for n, m in data["methods"].items()}, reference_methods(data["methods"])
        upgraded["ranking"] = rank(summaries, references=references)
        if "ranking_2" in data:
            upgraded["ranking_2"] = rank(summaries, "_2", references)
        if "paper_claims" in data:
            fresh = claims_section(upgraded)
            if fresh is not None:
                upgraded["paper_claims"] = fresh
    return upgraded
