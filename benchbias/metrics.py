"""Deprecated: this import path of an earlier release is kept for one release; import from benchbias.api (Score) or benchbias.foundation (ScoreTable).

Its names are those of :mod:`benchbias.foundation.scoretable`."""

import benchbias.foundation.scoretable as _moved
from benchbias.foundation.exports import warn_moved

__all__ = [name for name, value in vars(_moved).items() if getattr(value, "__module__", None) == _moved.__name__ or name.isupper()]
warn_moved("benchbias.metrics", "benchbias.api (Score) or benchbias.foundation (ScoreTable)")


def __getattr__(name: str) -> object:
    return getattr(_moved, name)
