"""The score table of benchbias's own metrics, for cells made without a table at hand."""

from __future__ import annotations

from benchbias.foundation.scoretable import ScoreTable
from benchbias.scoring.metrics import BUILTIN_METRICS, score_table


def default_table() -> ScoreTable:
    """The cell scores of benchbias's own metrics and the sweep scores derived from them."""
    return score_table([m() for m in BUILTIN_METRICS])
