"""Plain JSON in and out: atomic writes, and strict reads that keep NaN/Infinity visible to validation.

Results and leaderboards are only ever JSON (never pickle, never code). Python's ``json`` accepts the
non-standard constants ``NaN``/``Infinity``; here they are read as :class:`NonFinite` strings so that
schema validation rejects them and names the field that holds them.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from benchbias.foundation.errors import BenchbiasError

FULL_DISK = (errno.ENOSPC, errno.EDQUOT)


class OutOfSpace(BenchbiasError, OSError):
    """The disk (or quota) is full while writing a file; the message names the file."""


class NonFinite(str):
    """A ``NaN``/``Infinity`` constant found in a JSON file (not a number, so validation rejects it)."""


def _stage(path: Path, write: Callable[[IO[bytes]], Any]) -> str:
    """Call ``write(binary_handle)`` on a new temporary file next to ``path``; return its name.
    A full disk becomes :class:`OutOfSpace` naming ``path``; on any failure no temporary file is left."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; results are meant to be shared
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in FULL_DISK:
            raise OutOfSpace(exc.errno, f"{path}: cannot write: {os.strerror(exc.errno).lower()}") from None
        raise
    return tmp


def write_atomically(path: Path, write: Callable[[IO[bytes]], Any]) -> None:
    """Call ``write(binary_handle)`` on a temporary file next to ``path``, then rename it into place,
    so a reader sees the old file or the new one, never half of one."""
    os.replace(_stage(Path(path), write), path)


def replace_together(contents: dict[Path, bytes]) -> None:
    """Write several files that must agree (results.json, its report and figures): every temporary
    file is written first, then all are renamed into place. A failure while writing (a full disk)
    replaces none of them; the renames need no space."""
    staged: list[tuple[str, Path]] = []
    try:
        for path, data in contents.items():
            staged.append((_stage(Path(path), lambda handle, data=data: handle.write(data)), Path(path)))
    except BaseException:
        for tmp, _ in staged:
            Path(tmp).unlink(missing_ok=True)
        raise
    for tmp, path in staged:
        os.replace(tmp, path)


INLINE_WIDTH = 100  # characters, indentation included


def dumps(data: Any) -> str:
    """Indented JSON in which every array or object that fits in :data:`INLINE_WIDTH` characters
    stays on one line (an interval, a short parameter set): readable and diffable, at about half the
    size of one value per line. NaN/inf are refused (they are not JSON)."""
    return _dumps(data, 0) + "\n"


def _dumps(value: Any, level: int) -> str:
    flat = json.dumps(value, allow_nan=False)
    if not isinstance(value, (dict, list, tuple)) or not value or 2 * level + len(flat) <= INLINE_WIDTH:
        return flat
    inner, outer = "  " * (level + 1), "  " * level
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(k if isinstance(k, str) else json.dumps(k))}: {_dumps(v, level + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{outer}}}"
    items = [f"{inner}{_dumps(v, level + 1)}" for v in value]
    return "[\n" + ",\n".join(items) + f"\n{outer}]"


def write_json(path: Path, data: Any) -> None:
    text = dumps(data)
    write_atomically(Path(path), lambda handle: handle.write(text.encode()))


def read_json(path: Path) -> Any:
    """Parse a JSON file; ``NaN``/``Infinity`` become :class:`NonFinite` markers, not floats."""
    return json.loads(Path(path).read_text(encoding="utf-8"), parse_constant=NonFinite)
