"""benchbias: does a medical image translator hallucinate or erase disease?

Plugin authors import from :mod:`benchbias.api`; the command line is :mod:`benchbias.cli`. The
subpackages are the layers of the code, lowest first: ``foundation``, ``data``, ``nets``, ``judges``,
``scoring``, ``records``, ``report``, ``leaderboard``, ``sandbox``, ``run``.
"""

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("benchbias")
"""Decorate a plugin's hook functions with this, e.g. ``@hookimpl def register_translators(register)``."""

__all__ = ["__version__", "hookimpl"]
