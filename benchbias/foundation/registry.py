"""Build the plugin manager: entry points of group ``benchbias`` plus plugin folders.

Plugin folders are the installed baselines (the repository's ``plugins/``), every folder in the
``BENCHBIAS_PLUGIN_DIRS`` environment variable (``os.pathsep``-separated) and any ``--plugin-dir``.
Each ``*.py`` file in a folder is imported as one plugin module.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pluggy

from benchbias import __version__
from benchbias.foundation import contract, hookspecs
from benchbias.foundation.code_identity import classes_sha256
from benchbias.foundation.errors import BenchbiasError
from benchbias.foundation.scoretable import Score

ENTRY_POINT_GROUP = "benchbias"
PLUGIN_DIRS_ENV = "BENCHBIAS_PLUGIN_DIRS"
# Set (to 1) to ignore entry points of packages installed in the interpreter's site-packages, keeping
# those on PYTHONPATH: the test suite sets it, so that a plugin pip-installed in the environment
# (the plugin guide's example) does not change what its tests discover.
IGNORE_SITE_PLUGINS_ENV = "BENCHBIAS_IGNORE_SITE_PLUGINS"

KINDS = {
    "translator": ("register_translators", contract.Translator),
    "classifier": ("register_classifiers", contract.Classifier),
    "dataset": ("register_datasets", contract.DatasetLayout),
    "metric": ("register_metrics", contract.Metric),
}


class PluginError(BenchbiasError, ValueError):
    """A plugin failed to load or registered something invalid."""


@dataclass(frozen=True)
class Origin:
    """Where a plugin came from: an installed distribution's entry point, or a plugin file."""

    source: str  # "entry point" or "file"
    location: str  # the entry point's name, or the file's path
    distribution: str | None = None
    version: str | None = None
    sha256: str | None = None  # of the file, for file plugins

    def __str__(self) -> str:
        if self.source == "entry point":
            return f"entry point '{self.location}' ({self.distribution} {self.version})"
        packaged = f" ({self.distribution} {self.version})" if self.distribution else ""
        return f"file {self.location}{packaged}"

    @property
    def release(self) -> str:
        """What identifies this version of the plugin on a leaderboard."""
        if self.distribution:
            return f"{self.distribution} {self.version}"
        return f"{Path(self.location).name} sha256:{(self.sha256 or '')[:12]}"

    def to_dict(self) -> dict[str, str | None]:
        return {"source": self.source, "location": self.location, "distribution": self.distribution, "version": self.version, "sha256": self.sha256}


@dataclass(frozen=True)
class Registered:
    kind: str
    name: str
    cls: type
    origin: Origin
    code: str | None = None  # the code identity, when it was computed where the code was imported (a sandbox)

    @property
    def code_sha256(self) -> str:
        """The class's code identity: what the modules of its own classes (the class and its bases
        outside benchbias's contract) compute, so a change to a plugin's code recomputes its cells."""
        return self.code or code_sha256(self.cls)


def code_sha256(cls: type) -> str:
    """The code identity (:mod:`benchbias.foundation.code_identity`) of the modules of ``cls`` and its bases,
    benchbias's plugin contract and Python's own classes left out."""
    own = [k for k in cls.__mro__ if k.__module__.split(".")[0] not in ("builtins", "abc", "typing") and k.__module__ != contract.__name__]
    return classes_sha256(own)


@dataclass
class Registry:
    """Every registered class by kind and name, with the origin it came from."""

    entries: dict[str, dict[str, Registered]] = field(default_factory=lambda: {k: {} for k in KINDS})
    broken: list[BrokenPlugin] = field(default_factory=list)
    # Translators known only by a description made in the sandbox (benchbias.run.isolation), by name.
    described: dict[str, dict] = field(default_factory=dict)

    def add(self, kind: str, cls: type, origin: Origin, code: str | None = None) -> None:
        base = KINDS[kind][1]
        if not (isinstance(cls, type) and issubclass(cls, base)):
            raise PluginError(f"{origin}: registered {cls!r} as a {kind}, but it is not a {base.__name__} subclass")
        name = getattr(cls, "name", None)
        if not isinstance(name, str) or not name:
            raise PluginError(f"{origin}: {kind} {cls.__name__} has no 'name'")
        if kind == "translator" and not isinstance(getattr(cls, "paired", None), bool):
            raise PluginError(f"{origin}: translator '{name}' must set 'paired' to True or False")
        if kind == "metric":
            scores = getattr(cls, "scores", ())
            if not scores or not all(isinstance(s, Score) and s.level == "cell" for s in scores):
                raise PluginError(f"{origin}: metric '{name}' must declare 'scores', a non-empty tuple of benchbias.api.Score (level 'cell')")
        if name in self.entries[kind]:
            first = self.entries[kind][name].origin
            raise PluginError(f"{kind} '{name}' is registered twice: by {first} and by {origin}")
        self.entries[kind][name] = Registered(kind, name, cls, origin, code)

    def get(self, kind: str, name: str) -> Registered:
        try:
            return self.entries[kind][name]
        except KeyError:
            known = ", ".join(sorted(self.entries[kind])) or "none"
            skipped = "".join(f"; skipped {b}" for b in self.broken)
            raise PluginError(f"unknown {kind} '{name}' (available: {known}){skipped}") from None

    def names(self, kind: str) -> list[str]:
        return sorted(self.entries[kind])


def default_plugin_dirs() -> list[Path]:
    """The installed baselines, then the folders named in ``BENCHBIAS_PLUGIN_DIRS``."""
    import benchbias_plugins

    dirs = [Path(benchbias_plugins.__file__).parent]
    dirs += [Path(p) for p in os.environ.get(PLUGIN_DIRS_ENV, "").split(os.pathsep) if p]
    return dirs


def foreign_plugin_dirs(extra: Iterable[Path] = ()) -> tuple[Path, ...]:
    """The plugin folders that are not benchbias's own: those of ``BENCHBIAS_PLUGIN_DIRS``, then ``extra``."""
    return tuple(dict.fromkeys(Path(p).resolve() for p in [*default_plugin_dirs()[1:], *extra]))  # absolute: a sandboxed child starts elsewhere


def module_name_for(path: Path) -> str:
    """A plugin file's module name: the same in every process (worker processes import it again, and
    ``hash()`` of a string differs between processes), distinct for two files of the same name."""
    digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
    return f"benchbias_plugin_file_{digest}_{path.stem}"


def _import_file(path: Path) -> object:
    module_name = module_name_for(path)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PluginError(f"{path}: cannot be imported as a plugin")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # a broken plugin file must name itself
        del sys.modules[module_name]
        raise PluginError(f"{path}: failed to import: {type(exc).__name__}: {exc}") from exc
    return module


def _file_origin(path: Path, baselines: Path) -> Origin:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if path.parent == baselines:  # the baselines ship inside the benchbias distribution
        return Origin("file", f"benchbias_plugins/{path.name}", "benchbias", __version__, digest)
    return Origin("file", str(path), sha256=digest)


@dataclass(frozen=True)
class BrokenPlugin:
    """An installed entry point that failed to import: skipped, and named when a run needs it."""

    entry_point: str
    distribution: str
    version: str
    error: str

    def __str__(self) -> str:
        return (
            f"entry point '{self.entry_point}' of {self.distribution} {self.version} failed to import ({self.error}); "
            f"fix or uninstall it: pip uninstall {self.distribution}"
        )


def site_folders() -> list[Path]:
    """The interpreter's site-packages folders (the environment's, and the user's)."""
    import site
    import sysconfig

    folders = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"], *site.getsitepackages(), site.getusersitepackages()}
    return [Path(f).resolve() for f in folders if f]


def installed_in_site(dist: importlib.metadata.Distribution | None) -> bool:
    """Whether ``dist`` lives in one of :func:`site_folders` (not on PYTHONPATH or another path)."""
    if dist is None:
        return False
    where = Path(str(dist.locate_file(""))).resolve()
    return where in site_folders()


def build_plugin_manager(plugin_dirs: Iterable[Path] = (), own_only: bool = False) -> tuple[pluggy.PluginManager, dict[str, Origin], list[BrokenPlugin]]:
    """A PluginManager with entry points and folder plugins loaded; also each plugin's origin and the
    installed entry points that failed to import (skipped with a warning: one broken package must
    not stop runs that do not use it). ``own_only``: benchbias's own plugins alone (the baselines'
    folder and benchbias's entry points); nobody else's code is imported."""
    pm = pluggy.PluginManager("benchbias")
    pm.add_hookspecs(hookspecs)
    origins: dict[str, Origin] = {}
    broken: list[BrokenPlugin] = []

    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist
        if os.environ.get(IGNORE_SITE_PLUGINS_ENV) and installed_in_site(dist) or own_only and (dist is None or dist.name != "benchbias"):
            continue
        dist_name, dist_version = (dist.name, dist.version) if dist else ("unknown distribution", "?")
        try:
            module = ep.load()
        except Exception as exc:
            failure = BrokenPlugin(f"{ep.name} = {ep.value}", dist_name, dist_version, f"{type(exc).__name__}: {exc}".splitlines()[0])
            broken.append(failure)
            print(f"benchbias: warning: skipping {failure}", file=sys.stderr)
            continue
        plugin_name = f"entrypoint:{ep.name}"
        if pm.is_registered(module):  # the same module exposed twice: register once
            continue
        pm.register(module, name=plugin_name)
        origins[plugin_name] = Origin("entry point", ep.name, dist_name, dist_version)

    seen: set[Path] = set()
    folders = [Path(f) for f in (*default_plugin_dirs(), *plugin_dirs)]
    if own_only:
        folders = folders[:1]
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise PluginError(f"plugin folder {folder} does not exist")
        for path in sorted(folder.glob("*.py")):
            if path.name.startswith("_") or path.resolve() in seen:
                continue
            seen.add(path.resolve())
            plugin_name = f"file:{path.resolve()}"
            pm.register(_import_file(path), name=plugin_name)
            origins[plugin_name] = _file_origin(path.resolve(), folders[0].resolve())
    check_hooks(pm, origins)
    return pm, origins, broken


def check_hooks(pm: pluggy.PluginManager, origins: dict[str, Origin]) -> None:
    """A hook implementation that matches no hook (a misspelt ``register_translator``) is an error
    naming its plugin, not a silently ignored function."""
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        origin = origins.get(pm.get_name(exc.plugin) or "")
        known = ", ".join(sorted(name for name in dir(hookspecs) if name.startswith("register_")))
        raise PluginError(f"{origin or exc.plugin}: {exc} (the hooks are: {known})") from None


def load_registry(plugin_dirs: Iterable[Path] = (), own_only: bool = False) -> Registry:
    """Discover every plugin and collect what each one registers, attributing it to its origin
    (``own_only``: benchbias's own plugins alone, see :func:`build_plugin_manager`)."""
    pm, origins, broken = build_plugin_manager(plugin_dirs, own_only)
    registry = Registry(broken=broken)
    for kind, (hook_name, _) in KINDS.items():
        # Each implementation is called on its own so that every registration is attributed to the
        # plugin that made it (needed to name both origins of a duplicate name).
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            origin = origins[impl.plugin_name]
            impl.function(register=lambda cls, kind=kind, origin=origin: registry.add(kind, cls, origin))
    return registry
