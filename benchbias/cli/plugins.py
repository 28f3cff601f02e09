"""``benchbias plugins``: the installed translators, classifiers and data layouts, with their origin."""

from __future__ import annotations

import argparse

from benchbias.cli.common import plugin_dir_option


def add_parsers(sub: argparse._SubParsersAction) -> None:
    plugins = sub.add_parser("plugins", help="list translators, classifiers and data layouts with their origin")
    plugin_dir_option(plugins)
    plugins.set_defaults(handler=cmd_plugins)


def cmd_plugins(args: argparse.Namespace) -> int:
    from benchbias.foundation.registry import load_registry

    registry = load_registry(args.plugin_dir)
    for kind in ("translator", "classifier", "dataset"):
        print(f"{kind}s:")
        for name in registry.names(kind):
            entry = registry.get(kind, name)
            training = ("paired" if entry.cls.paired else "unpaired") + "  " if kind == "translator" else ""
            print(f"  {name:<16} {training}{entry.origin}")
    return 0
