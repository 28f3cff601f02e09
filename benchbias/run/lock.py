"""One run at a time per results folder: a lock file holding the running process's id.

Two runs into one folder would compute the same cells twice and race to write ``results.json``. The
lock is an ``fcntl.flock`` on ``<out>/run.lock``: the kernel releases it when the holder exits, however
it exits (``kill -9`` included), so a lock file left behind by a killed run never blocks a rerun.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchbias.foundation.errors import BenchbiasError

LOCK_FILE = "run.lock"


NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


class FolderBusy(BenchbiasError, RuntimeError):
    """Another live run holds the results folder."""


class FolderNotWritable(BenchbiasError, PermissionError):
    """The results folder cannot be created or written."""


@contextmanager
def holding(out: Path) -> Iterator[None]:
    """Hold ``out``'s run lock for the ``with`` block; refuse at once, naming the holder's process
    id, when another live process holds it."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before
        yield
        return
    path = out / LOCK_FILE
    try:
        out.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the block, closed below
    except OSError as exc:
        if exc.errno not in NOT_WRITABLE:
            raise
        raise FolderNotWritable(f"--out {out}: cannot write there ({os.strerror(exc.errno).lower()}); choose a folder you can write to") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise FolderBusy(f"--out {out}: another benchbias run (pid {holder}) is using this folder; wait for it to finish or choose another --out") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()  # releases the lock
