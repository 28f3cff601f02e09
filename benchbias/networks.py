"""Deprecated: this import path of an earlier release is kept for one release; import from benchbias.api.

Its names are those of :mod:`benchbias.nets.networks`."""

import benchbias.nets.networks as _moved
from benchbias.foundation.exports import warn_moved

__all__ = [name for name, value in vars(_moved).items() if getattr(value, "__module__", None) == _moved.__name__ or name.isupper()]
warn_moved("benchbias.networks", "benchbias.api")


def __getattr__(name: str) -> object:
    return getattr(_moved, name)
