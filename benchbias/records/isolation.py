"""Where a result's translators ran: recorded per cell (``"isolation": "bubblewrap <version>"`` when
``benchbias run --isolate`` ran them in the OS sandbox, absent when they ran in the runner's process)
and summarised for a run or a leaderboard entry."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def isolation_of(cells: Iterable[dict[str, Any]]) -> str:
    """The sandbox's name when every cell ran in it, "none" when none did, "partial" otherwise."""
    where = {cell.get("isolation", "none") for cell in cells}
    return where.pop() if len(where) == 1 else ("partial" if where else "none")


def where_ran(isolation: str) -> str:
    """``isolation`` (of :func:`isolation_of`) as a phrase: "isolated (bubblewrap 0.11.0)", ..."""
    return {"none": "in the runner's process (not isolated)", "partial": "partly isolated, partly in the runner's process"}.get(
        isolation, f"isolated ({isolation})"
    )
