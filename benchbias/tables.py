"""Rows of strings for the verdict tables, rendered as Markdown or aligned text.

The same rows serve ``benchbias run``, the HTML report, the leaderboard page and ``leaderboard show``,
so a score's column looks the same everywhere.
"""
from __future__ import annotations

from typing import Any, Iterable

from benchbias.summary import SWEEP_SCORES, fmt_ci


def verdict_header() -> list[str]:
    return [s.label for s in SWEEP_SCORES]


def verdict_cells(summary: dict[str, Any]) -> list[str]:
    """One row's sweep scores, each with its 95% interval over seeds when several ran."""
    ci = summary.get("ci95", {})
    return [fmt_ci(summary[s.name], ci.get(s.name), s.digits) for s in SWEEP_SCORES]


def verdict_rows(ranked: Iterable[tuple[str, dict[str, Any]]], extra_header: list[str] = (), extra: Iterable[list[str]] = ()) -> list[list[str]]:
    """Header plus one row per (method, summary) in the order given (the ranking)."""
    extra = list(extra)
    rows = [["rank", "method", *verdict_header(), *extra_header]]
    for i, (name, summary) in enumerate(ranked, start=1):
        rows.append([str(i), name, *verdict_cells(summary), *(extra[i - 1] if extra else [])])
    return rows


def markdown_table(rows: list[list[str]], right: Iterable[int] = ()) -> str:
    head, *body = rows
    right = set(right)
    align = ["---:" if i in right else "---" for i in range(len(head))]
    return "\n".join("| " + " | ".join(r) + " |" for r in [head, align, *body])


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows)


SCORE_COLUMNS = range(2, 2 + len(SWEEP_SCORES))  # right-aligned in Markdown
