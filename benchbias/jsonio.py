"""Plain JSON in and out: atomic writes, and strict reads that keep NaN/Infinity visible to validation.

Results and leaderboards are only ever JSON (never pickle, never code). Python's ``json`` accepts the
non-standard constants ``NaN``/``Infinity``; here they are read as :class:`NonFinite` strings so that
schema validation rejects them and names the field that holds them.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable


class NonFinite(str):
    """A ``NaN``/``Infinity`` constant found in a JSON file (not a number, so validation rejects it)."""


def write_atomically(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write(binary_handle)`` on a temporary file next to ``path``, then rename it into place,
    so a reader sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def dumps(data: Any) -> str:
    """Indented JSON; NaN/inf are refused (they are not JSON)."""
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


def write_json(path: Path, data: Any) -> None:
    text = dumps(data)
    write_atomically(Path(path), lambda handle: handle.write(text.encode()))


def read_json(path: Path) -> Any:
    """Parse a JSON file; ``NaN``/``Infinity`` become :class:`NonFinite` markers, not floats."""
    return json.loads(Path(path).read_text(encoding="utf-8"), parse_constant=NonFinite)
