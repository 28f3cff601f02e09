"""The registry of an isolated run (``benchbias run --isolate``): benchbias's own plugins imported
here, every other translator known only by what the sandbox reports of it.

Importing a plugin's module runs its code: a module that patches benchbias's scoring at import would
do so in the runner. An isolated run therefore imports nobody else's code in the runner or its
workers. The translators it needs from plugin folders and installed packages are described by a child
in the sandbox (:func:`benchbias.sandbox.isolated.describe`): paired or not, whether it trains models
together, its parameters as resolved, its code identity and origin. The runner registers a stand-in
for each (:func:`stand_in`) whose ``fit`` and ``translate`` refuse to run: the real ones run only in
the sandbox. Plugins of other kinds (metrics, judges, data layouts) are benchbias's own in an isolated
run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from benchbias.foundation.config import Benchmark
from benchbias.foundation.contract import Param, Translator
from benchbias.foundation.registry import Origin, PluginError, Registry, foreign_plugin_dirs, load_registry


class OnlyInTheSandbox(RuntimeError):
    """A stand-in's ``fit`` or ``translate`` was called outside the sandbox."""


def stand_in(description: dict[str, Any]) -> type[Translator]:
    """A translator class that carries what the sandbox reported of a plugin and nothing of its code."""

    def refuse(self, *args: Any, **kwargs: Any) -> None:
        raise OnlyInTheSandbox(f"{self.name} runs only in the sandbox (benchbias run --isolate)")

    params = {name: Param(value, "as the plugin declares it (reported by the sandbox)") for name, value in description["hparams"].items()}
    namespace = {
        "name": description["name"],
        "description": description.get("description", ""),
        "paired": description["paired"],
        "trains_together": description["trains_together"],
        "params": params,
        "fit": refuse,
        "translate": refuse,
    }
    return type(f"Described_{description['name'].replace('-', '_')}", (Translator,), namespace)


def add_described(registry: Registry, descriptions: dict[str, dict[str, Any]]) -> None:
    """Register a stand-in for each description (by method name) not already in ``registry``."""
    for description in descriptions.values():
        if description["name"] in registry.entries["translator"]:
            continue
        origin = Origin(**description["origin"])
        registry.add("translator", stand_in(description), origin, code=description["code"])
        registry.described[description["name"]] = description


def isolated_registry(bench: Benchmark, methods: Sequence[str], plugin_dirs: Iterable[Path] = ()) -> Registry:
    """The registry of an isolated run of ``bench``'s ``methods`` (default: its non-optional ones)."""
    from benchbias.sandbox.isolated import describe

    registry = load_registry(own_only=True)
    wanted = set(methods) or {m.name for m in bench.methods if m.name not in bench.optional_methods}
    foreign = {
        m.name: {"plugin": m.plugin, "params": dict(m.params)} for m in bench.methods if m.name in wanted and m.plugin not in registry.entries["translator"]
    }
    if not foreign:
        return registry
    descriptions = describe(foreign, foreign_plugin_dirs(plugin_dirs))
    for method, description in descriptions.items():
        if "error" in description:
            raise PluginError(f"{bench.source_file}: methods.{method}: {description['error']}")
        checked(description, method)
    add_described(registry, {method: d for method, d in descriptions.items()})
    return registry


def checked(description: Any, method: str) -> None:
    """A description is plain data of the expected shape; anything else is refused in one line."""
    fields = {"name": str, "paired": bool, "trains_together": bool, "description": str, "hparams": dict, "code": str, "origin": dict}
    if not isinstance(description, dict) or any(not isinstance(description.get(k), t) for k, t in fields.items()):
        raise PluginError(f"methods.{method}: the sandbox's description of its translator is malformed")
    origin = description["origin"]
    if set(origin) - {"source", "location", "distribution", "version", "sha256"} or not all(v is None or isinstance(v, str) for v in origin.values()):
        raise PluginError(f"methods.{method}: the sandbox's description of its translator's origin is malformed")
