"""The one base of every error that means "your input is wrong".

The CLI catches :class:`BenchbiasError`, prints its message as one line and exits with code 2.
Each subclass is defined where its checks live and says which file, field or option is at fault.
"""

from __future__ import annotations


class BenchbiasError(Exception):
    """A user-facing problem: a bad file, field, option, plugin or data set (one line, exit 2)."""
