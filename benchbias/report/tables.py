"""Every table benchbias shows, as rows of strings, rendered as Markdown, aligned text or HTML.

The same rows serve ``benchbias run``, the HTML report, the leaderboard page and ``leaderboard show``,
so a score's column looks the same everywhere. Columns come from the score table the results file
or leaderboard carries (:mod:`benchbias.foundation.scoretable`), never from a list of names here.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from benchbias.foundation.scoretable import Score, ScoreTable
from benchbias.scoring.summary import CONFIDENCE, fmt, fmt_ci

NUMERIC = ' class="num"'


@dataclass
class Rows:
    """A header row, body rows, and which columns hold numbers (right-aligned)."""

    header: list[str]
    body: list[list[str]] = field(default_factory=list)
    numeric: set[int] = field(default_factory=set)

    def markdown(self) -> str:
        align = ["---:" if i in self.numeric else "---" for i in range(len(self.header))]
        return "\n".join("| " + " | ".join(r) + " |" for r in [self.header, align, *self.body])

    def text(self) -> str:
        rows = [self.header, *self.body]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.header))]
        return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)

    def html(self) -> str:
        def cells(row: list[str], tag: str) -> str:
            return "".join(f"<{tag}{NUMERIC if i in self.numeric else ''}>{html.escape(text)}</{tag}>" for i, text in enumerate(row))

        body = "\n".join(f"<tr>{cells(row, 'td')}</tr>" for row in self.body)
        return f"<table>\n<thead><tr>{cells(self.header, 'th')}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def text_table(rows: list[list[str]]) -> str:
    """Aligned text of a header row and body rows."""
    return Rows(rows[0], rows[1:]).text()


def _scores_cells(summary: dict[str, Any], scores: list[Score]) -> list[str]:
    ci = summary.get("ci95", {})
    return [fmt_ci(summary.get(s.name), ci.get(s.name), s.digits) for s in scores]


ARROWS = {"lower": " ↓", "higher": " ↑", "neither": ""}


def ranking_rows(
    ranked: Iterable[tuple[str, dict[str, Any]]], table: ScoreTable, extra_header: Iterable[str] = (), extra: Iterable[list[str]] = (), arrows: bool = False
) -> Rows:
    """The verdict: one row per (method, summary) in the order given (the ranking), each score with
    its 95% interval over seeds when several ran; ``arrows`` marks each score's better direction."""
    scores, extra = table.verdict(), list(extra)
    labels = [s.label + (ARROWS[s.better] if arrows else "") for s in scores]
    rows = Rows(["rank", "method", *labels, *extra_header], numeric={0, *range(2, 2 + len(scores))})
    for i, (name, summary) in enumerate(ranked, start=1):
        rows.body.append([str(i), name, *_scores_cells(summary, scores), *(extra[i - 1] if extra else [])])
    return rows


MORE_NOTE = "↓ lower is better, ↑ higher is better; means over the sweep, with 95% t-intervals over seeds when several ran"


def more_rows(ranked: Iterable[tuple[str, dict[str, Any]]], table: ScoreTable) -> Rows | None:
    """The sweep scores that are not verdict columns (similarity, segmentation, second judge, plugins'),
    in ranking order; None when there are none."""
    ranked = list(ranked)
    scores = [s for s in table.more() if any(s.name in summary for _, summary in ranked)]
    if not scores:
        return None
    rows = Rows(["method", *[s.label + ARROWS[s.better] for s in scores]], numeric=set(range(1, 1 + len(scores))))
    for name, summary in ranked:
        rows.body.append([name, *_scores_cells(summary, scores)])
    return rows


def fraction_rows(entries: Iterable[tuple[str, list[dict[str, Any]]]], score: Score, fractions: list[float]) -> Rows:
    """One score's per-fraction means (over seeds), one row per (method, per_fraction rows)."""
    rows = Rows(["method", *[f"{f:g}" for f in fractions]], numeric=set(range(1, 1 + len(fractions))))
    for name, per_fraction in entries:
        by_ratio = {row["ratio"]: row["mean"].get(score.name) for row in per_fraction}
        rows.body.append([name, *[fmt(by_ratio.get(f), min(score.digits, 2) if score.kind == "rate" else score.digits) for f in fractions]])
    return rows


# What a terminal shows of each cell (the report shows every per-fraction score).
COMPACT = ("tumor_called_healthy_inputs", "tumor_called_tumor_inputs", "hallucination", "erasure", "mae", "ssim", "area_added", "area_removed")


def cell_rows(method: dict[str, Any], table: ScoreTable, only: Iterable[str] | None = None) -> Rows:
    """One row per (target fraction, seed) cell of a method: every per-fraction score (or those named
    in ``only``), with its bootstrap interval over holdout slices when the cell has one."""
    only = None if only is None else set(only)
    scores = [s for s in table.per_fraction() if all(s.name in c["scores"] for c in method["cells"]) and (only is None or s.name in only)]
    rows = Rows(["target tumor fraction", "seed", *[s.label for s in scores]], numeric=set(range(2 + len(scores))))
    for cell in method["cells"]:
        ci = cell.get("ci95", {})
        rows.body.append([f"{cell['ratio']:.1f}", str(cell["seed"]), *[fmt_ci(cell["scores"][s.name], ci.get(s.name), s.digits) for s in scores]])
    return rows


def ranked_rows_of_results(results: dict[str, Any], suffix: str = "", arrows: bool = False) -> Rows:
    """A results file's verdict table in ranking order; the last columns give the Figure 2 slopes."""
    table = ScoreTable.from_json(results["score_table"])
    ranking = results["ranking"] if not suffix else results["ranking_2"]
    ranked = [(row["method"], results["methods"][row["method"]]["summary"]) for row in ranking]
    extra = [[fmt(s["healthy_inputs"]["slope"]), fmt(s["tumor_inputs"]["slope"])] for _, s in ranked]
    rows = ranking_rows(ranked, table, ["slope healthy in", "slope tumor in"], extra, arrows=arrows)
    rows.numeric |= {len(rows.header) - 2, len(rows.header) - 1}
    return rows


def more_rows_of_results(results: dict[str, Any]) -> Rows | None:
    table = ScoreTable.from_json(results["score_table"])
    return more_rows([(row["method"], results["methods"][row["method"]]["summary"]) for row in results["ranking"]], table)


SEEDS_NOTE = (
    f"Each score pools all of an entry's seeds; brackets are {CONFIDENCE:.0%} t-intervals of its per-seed values "
    "(for composition sensitivity, a maximum of two slopes, the pooled value can sit off the interval's centre); "
    "an entry with one seed has none."
)


def second_judge_sentence(results: dict[str, Any]) -> str:
    """One sentence: does the ranking hold under the second judge, and how far do the judges agree?"""
    first = [row["method"] for row in results["ranking"]]
    second = [row["method"] for row in results["ranking_2"]]
    judge = results.get("extra_judges", {}).get("second_judge", {}).get("name", "the second judge")
    kappas = [m["summary"].get("kappa") for m in results["methods"].values()]
    kappas = [k for k in kappas if k is not None]
    agreement = f"; the two judges' Cohen's kappa on the translations is {min(kappas):.2f} to {max(kappas):.2f} across methods" if kappas else ""
    if first == second:
        return f"Under the second judge ({judge}) the ranking is unchanged{agreement}."
    return f"Under the second judge ({judge}) the ranking changes: {' > '.join(first)} becomes {' > '.join(second)}{agreement}."
