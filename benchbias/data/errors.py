"""The error of an unusable data set, case or file."""

from __future__ import annotations

from benchbias.foundation.errors import BenchbiasError


class DataError(BenchbiasError, ValueError):
    """A data set, case or file is unusable; the message names it."""
