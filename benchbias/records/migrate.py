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

The stored file is not rewritten; ``benchbias leaderboard render`` (or any submit) writes a leaderboard
back in the current schema.
"""

from __future__ import annotations

from typing import Any

from benchbias.records.schemas import LEADERBOARD_SCHEMA, RESULTS_SCHEMA
from benchbias.scoring.summary import per_fraction

RESULTS_PREVIOUS = "benchbias.results/3"
LEADERBOARD_PREVIOUS = "benchbias.leaderboard/2"


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


def upgrade(data: Any, kind: str, source: str) -> Any:
    """``data`` in the current schema when it is in the previous one; anything else unchanged (the
    schema check then says what is wrong with it)."""
    if not isinstance(data, dict):
        return data
    if kind == "results" and data.get("schema") == RESULTS_PREVIOUS and isinstance(data.get("methods"), dict):
        table = _table_of_schema_3()
        try:
            for method in data["methods"].values():
                _recompute(method, table)
            data["ranking"] = [_renamed(row) for row in data["ranking"]]
        except (KeyError, TypeError, AttributeError):
            return data  # damaged: the schema check names the problem
        return {**data, "schema": RESULTS_SCHEMA, "score_table": table.to_json()}
    if kind == "leaderboard" and data.get("schema") == LEADERBOARD_PREVIOUS and isinstance(data.get("entries"), list):
        table = _table_of_schema_3()
        try:
            for entry in data["entries"]:
                _recompute(entry, table)
        except (KeyError, TypeError, AttributeError):
            return data
        return {**data, "schema": LEADERBOARD_SCHEMA, "score_table": table.to_json()}
    return data
