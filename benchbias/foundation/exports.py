"""A package's public names, loaded on first use.

Each subpackage's ``__init__`` declares its public surface as ``{module: [names]}`` and gets its
``__all__`` from :func:`lazy_exports`; a name is imported from its module when first used. Importing
one light module of a package (a leaderboard's validation, say) therefore does not import the
package's heavy ones (torch, MONAI, matplotlib).

Modules kept at an earlier release's import path call :func:`warn_moved`.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, Sequence[str]]) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """``__all__``, ``__getattr__`` and ``__dir__`` of ``package``, whose module ``package.<module>``
    defines each of ``exports[module]``."""
    where = {name: f"{package}.{module}" for module, names in exports.items() for name in names}

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(where[name]), name)

    def __dir__() -> list[str]:
        return sorted(where)

    return sorted(where), __getattr__, __dir__


def warn_moved(old: str, new: str) -> None:
    """Warn, from a module kept at an earlier release's import path ``old``, that it moved to
    ``new``; the warning names the line that imported it."""
    frame, level = sys._getframe(2), 3
    while frame is not None and frame.f_code.co_filename.startswith("<frozen importlib"):
        frame, level = frame.f_back, level + 1
    warnings.warn(f"{old} is deprecated and goes in the next release: import from {new}", DeprecationWarning, stacklevel=level)
