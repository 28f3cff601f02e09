"""The architecture of ``benchbias/``, checked: its layers, lowest first, and the import rules.

Every subpackage (and the few top-level modules) is one layer of :data:`LAYERS`. A module may import
from its own layer and from the layers below it, never from a layer above; and no chain of imports
leads back to where it started (a cycle), whether the imports sit at the top of a module, inside a
function, under ``if TYPE_CHECKING:``, or are a package's public names loaded on first use (an
import moved into a function still runs the layers in the wrong order, it only hides the cycle).
Importing a module also runs the ``__init__`` of each package above it, so that counts as an import
too. The import graph is read from the source with :mod:`ast`,
without importing anything.

``python tests/test_architecture.py [--flat] [FOLDER]`` prints the import map: modules, layers, import arrows,
floors (the longest chain of imports), cycles, upward imports and the largest modules.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "benchbias"

# The layers of benchbias, lowest first: each may use those before it, none those after it.
LAYERS = (
    "benchbias",  # the package root: __version__ and hookimpl; imports nothing of benchbias
    "foundation",  # errors, JSON files, benchmark files, the score table, the plugin contract and registry, code identities, progress
    "data",  # data layouts, the synthetic data set, MONAI reading, prepared slices, the sweep protocol's subject split and domains
    "nets",  # networks, losses, history pools, the shared training loop of network translators, the image scale
    "judges",  # the pinned judges: classifier weights, the segmentation judge, robustness, a run's panel of judges
    "scoring",  # per-cell metrics, the sweep summary and ranking, the paper's claims
    "records",  # results and leaderboard files: schemas, migration, validation, provenance
    "report",  # tables, figures and the HTML report
    "leaderboard",  # leaderboards, their figure, compare and check
    "sandbox",  # the OS sandbox of isolated translators (bubblewrap) and the messages across it
    "run",  # a run: its inputs, cells and their files, executors, results, plan, selftest
    "verification",  # leaderboard verify: sampled cells re-run in the sandbox on a private holdout, then signed
    "api",  # the public API of plugin authors
    "cli",  # the command line, one module per command family
    "__main__",  # python -m benchbias
    "compat",  # deprecated import paths of earlier releases (thin shims)
)
# Top-level modules that are not a subpackage, with their layer.
TOP_LEVEL = {"api": "api", "__main__": "__main__"}
COMPAT = {"contract", "translation", "networks", "robustness", "metrics"}  # benchbias.<name>: deprecated shims
COMPAT_IN_PACKAGES = {"data.layouts"}
MAX_LINES = 400


@dataclass
class Graph:
    modules: dict[str, Path] = field(default_factory=dict)
    edges: dict[str, dict[str, str]] = field(default_factory=lambda: defaultdict(dict))  # importer -> {imported: how}

    def arrows(self) -> list[tuple[str, str, str]]:
        return [(a, b, how) for a, targets in sorted(self.edges.items()) for b, how in sorted(targets.items())]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _how(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> str:
    """Where an import sits: at module level, inside a function, or in an ``if TYPE_CHECKING:`` block."""
    while node in parents:
        node = parents[node]
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return "function"
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            return "type-only"
    return "module"


def build_graph(root: Path = PACKAGE) -> Graph:
    graph = Graph()
    for path in sorted(root.rglob("*.py")):
        graph.modules[module_name(path, root)] = path
    top = root.name
    for name, path in graph.modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            targets = []
            lazy = isinstance(node, ast.Call) and getattr(node.func, "id", None) == "lazy_exports" and isinstance(node.args[1], ast.Dict)
            if lazy:  # a package's public names, imported from their modules on first use
                targets = [f"{name}.{key.value}" for key in node.args[1].keys]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                # `from package import module` imports the module; `from module import name` the module.
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in graph.modules else base for alias in node.names]
            for target in targets:
                while target and target not in graph.modules and "." in target:
                    target = target.rpartition(".")[0]
                if target.split(".")[0] != top or target not in graph.modules or target == name:
                    continue
                how = "on first use" if lazy else _how(node, parents)
                # Importing a module runs the packages above it that the importer is not inside.
                ancestors = [".".join(target.split(".")[:i]) for i in range(2, target.count(".") + 1)]
                for imported in [target, *(a for a in ancestors if not name.startswith(a + ".") and a != name)]:
                    known = graph.edges[name].get(imported)
                    strongest = ("module", "function", "on first use", "type-only")  # how a pair is listed when it is imported several ways
                    graph.edges[name][imported] = min(how, known or how, key=strongest.index)
    return graph


def layer_of(module: str) -> str:
    parts = module.split(".")[1:]
    if not parts:
        return "benchbias"
    if (len(parts) == 1 and parts[0] in COMPAT) or ".".join(parts) in COMPAT_IN_PACKAGES:
        return "compat"
    return TOP_LEVEL.get(parts[0], parts[0])


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.edges.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in graph.modules:
        if v not in index:
            visit(v)
    return found


def re_exporting(graph: Graph) -> set[str]:
    """Packages whose ``__init__`` holds no code of its own, only re-exports."""
    found = set()
    for name, path in graph.modules.items():
        if path.name == "__init__.py" and not any(isinstance(n, (ast.ClassDef, ast.FunctionDef)) for n in ast.parse(path.read_text(encoding="utf-8")).body):
            found.add(name)
    return found


def floors(graph: Graph) -> dict[str, int]:
    """Each module's floor: 0 when it imports nothing of benchbias, else one above the highest floor
    it imports (modules of a cycle share a floor). Packages that only re-export are left out: they
    are a door to their modules, not a floor."""
    doors = re_exporting(graph)
    graph = Graph(
        {m: p for m, p in graph.modules.items() if m not in doors},
        {a: {b: h for b, h in t.items() if b not in doors} for a, t in graph.edges.items() if a not in doors},
    )
    component = {m: i for i, c in enumerate(cycles(graph)) for m in c}
    floor: dict[str, int] = {}

    def of(m: str, seen: frozenset = frozenset()) -> int:
        if m in floor:
            return floor[m]
        group = component.get(m)
        members = [x for x, g in component.items() if g == group] if group is not None else [m]
        seen = seen | set(members)
        below = [of(t, seen) for x in members for t in graph.edges.get(x, {}) if t not in seen]
        value = 1 + max(below) if below else 0
        for x in members:
            floor[x] = value
        return value

    for m in graph.modules:
        of(m)
    return floor


def upward(graph: Graph) -> list[tuple[str, str, str]]:
    order = {name: i for i, name in enumerate(LAYERS)}
    return [(a, b, how) for a, b, how in graph.arrows() if order.get(layer_of(b), -1) > order.get(layer_of(a), len(LAYERS))]


def lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


# ---- the rules ------------------------------------------------------------------------------------

GRAPH = build_graph()


def test_every_module_belongs_to_a_declared_layer():
    assert {m: layer_of(m) for m in GRAPH.modules if layer_of(m) not in LAYERS} == {}


def test_no_import_cycle():
    assert cycles(GRAPH) == [], "modules that import each other, directly or through others (function-level imports count)"


def test_no_import_runs_up_the_layers():
    assert upward(GRAPH) == [], f"imports against the layer order {' < '.join(LAYERS)}"


def test_the_root_imports_nothing_of_benchbias():
    assert dict(GRAPH.edges.get("benchbias", {})) == {}


def test_no_module_is_over_400_lines():
    assert {m: lines(p) for m, p in GRAPH.modules.items() if lines(p) > MAX_LINES} == {}


def test_compat_shims_are_only_used_from_outside():
    users = {a: b for a, b, _ in GRAPH.arrows() if layer_of(b) == "compat" and layer_of(a) != "compat"}
    assert users == {}, "benchbias itself imports the new paths"


def test_the_graph_sees_every_kind_of_import(tmp_path):
    root = tmp_path / "pkg"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    (root / "sub" / "__init__.py").write_text("from .b import thing\n")
    (root / "a.py").write_text("def f():\n    from pkg.sub import b\n")
    (root / "sub" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\nthing = 1\n")
    (root / "c.py").write_text("from pkg.sub.b import thing\n")
    (root / "lazy").mkdir()
    (root / "lazy" / "__init__.py").write_text('__all__, __getattr__, __dir__ = lazy_exports(__name__, {"d": ["x"]})\n')
    (root / "lazy" / "d.py").write_text("import pkg.c\n")
    graph = build_graph(root)
    assert graph.arrows() == [
        ("pkg.a", "pkg.sub", "function"),  # importing pkg.sub.b runs pkg/sub/__init__.py first
        ("pkg.a", "pkg.sub.b", "function"),
        ("pkg.c", "pkg.sub", "module"),
        ("pkg.c", "pkg.sub.b", "module"),
        ("pkg.lazy", "pkg.lazy.d", "on first use"),
        ("pkg.lazy.d", "pkg.c", "module"),
        ("pkg.sub", "pkg.sub.b", "module"),
        ("pkg.sub.b", "pkg.a", "type-only"),
    ]
    assert cycles(graph) == [["pkg.a", "pkg.sub", "pkg.sub.b"]]


# ---- the map --------------------------------------------------------------------------------------


def print_map(root: Path = PACKAGE, flat: bool = False) -> None:
    """``flat``: a tree without declared layers (each top-level module its own)."""
    graph = build_graph(root)
    floor = floors(graph)
    arrows = graph.arrows()
    layers = sorted({layer_of(m) for m in graph.modules}, key=lambda x: LAYERS.index(x) if x in LAYERS else len(LAYERS))
    print(
        f"{root}: {len(graph.modules)} modules, {sum(lines(p) for p in graph.modules.values())} lines, "
        f"{len(arrows)} import arrows ({sum(how != 'module' for *_, how in arrows)} inside functions, on first use or type-only), "
        f"{max(floor.values()) + 1} floors (longest import chain), " + ("no declared layers" if flat else f"{len(layers)} layers")
    )
    for layer in [] if flat else layers:
        members = sorted(m for m in graph.modules if layer_of(m) == layer)
        print(f"  {layer:<12} {len(members):>2} modules: {', '.join(m.split('.', 1)[-1] if '.' in m else m for m in members)}")
    found = cycles(graph)
    print(f"cycles: {len(found)}")
    for component in found:
        inner = [f"{a} -> {b} ({how})" for a, b, how in arrows if a in component and b in component]
        print(f"  {' <-> '.join(component)}: {'; '.join(inner)}")
    up = [] if flat else upward(graph)
    if not flat:
        print(f"imports up the layers ({' < '.join(LAYERS)}): {len(up)}")
    for a, b, how in up:
        print(f"  {a} ({layer_of(a)}) -> {b} ({layer_of(b)}), {how}")
    largest = sorted(graph.modules.items(), key=lambda item: -lines(item[1]))[:12]
    print("largest modules: " + ", ".join(f"{m.split('.', 1)[-1]} {lines(p)}" for m, p in largest))


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if a != "--flat"]
    print_map(Path(arguments[0]).resolve() if arguments else PACKAGE, flat="--flat" in sys.argv)
