"""benchbias: does a medical image translator hallucinate or erase disease?"""

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("benchbias")
"""Decorate a plugin's hook functions with this, e.g. ``@hookimpl def register_translators(register)``."""

__all__ = ["__version__", "hookimpl"]
