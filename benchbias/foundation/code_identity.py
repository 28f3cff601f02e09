"""Code identities: what cell keys, scoring keys and judge records say about the code behind them.

An identity is the sha256 of what a module *computes*, not of its file: the module's syntax tree
 without its import statements, docstrings and other bare string statements,
``__all__``, and ``if TYPE_CHECKING:`` blocks, and with the names it gives its own top-level
classes, functions and constants replaced by their order of definition. Moving a module to another
package or file, reformatting it, editing its comments, docstrings or imports, or renaming one of
its own definitions leaves its identity as it was; any change to what its code does changes it.
Where several modules make one identity, each enters under a stable logical name, not its path.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import inspect
import json
from collections.abc import Iterable, Mapping
from pathlib import Path


def _is_type_checking(node: ast.stmt) -> bool:
    test = getattr(node, "test", None)
    return (
        isinstance(node, ast.If)
        and not node.orelse
        and ((isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))
    )


def _is_all(node: ast.stmt) -> bool:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, (ast.AnnAssign, ast.AugAssign)) else []
    return any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets)


def _kept(node: ast.stmt) -> bool:
    """Statements that compute nothing: imports, bare strings (docstrings), ``__all__``, type-only blocks."""
    if isinstance(node, (ast.Import, ast.ImportFrom)) or _is_all(node) or _is_type_checking(node):
        return False
    return not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str))


class _Strip(ast.NodeTransformer):
    def generic_visit(self, node: ast.AST) -> ast.AST:
        super().generic_visit(node)
        for name in ("body", "orelse", "finalbody"):
            body = getattr(node, name, None)
            if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                kept = [statement for statement in body if _kept(statement)]
                # A block left empty (a function of only a docstring) holds `pass`, as its source could.
                setattr(node, name, kept or ([ast.Pass()] if name == "body" else []))
        return node


def _own_names(tree: ast.Module) -> dict[str, str]:
    """The module's top-level definitions, each mapped to a name that says only its place."""
    names: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            found = [node.name]
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found = [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
        else:
            found = []
        names += [name for name in found if name not in names]
    return {name: f"<definition {i}>" for i, name in enumerate(names)}


class _Rename(ast.NodeTransformer):
    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    def visit_Name(self, node: ast.Name) -> ast.Name:
        node.id = self.names.get(node.id, node.id)
        return node

    def _definition(self, node):
        node.name = self.names.get(node.name, node.name)
        return self.generic_visit(node)

    visit_ClassDef = visit_FunctionDef = visit_AsyncFunctionDef = _definition


# Fields that say nothing about what code computes (how a name is used is clear from where it stands).
IGNORED_FIELDS = ("ctx", "kind", "type_comment")


def _plain(node: object) -> object:
    """A syntax tree as plain lists, the same on every Python that parses the source alike: fields
    that are empty or None are left out (newer Pythons add fields, such as ``type_params``, that older
    ones lack), constants carry their type."""
    if isinstance(node, ast.AST):
        fields = {name: _plain(value) for name, value in ast.iter_fields(node) if name not in IGNORED_FIELDS and value is not None and value != []}
        return [type(node).__name__, fields]
    if isinstance(node, list):
        return [_plain(item) for item in node]
    return [type(node).__name__, repr(node)]


def normalised(source: str) -> str:
    """The syntax tree of ``source`` that an identity hashes, as text."""
    tree = _Strip().visit(ast.parse(source))
    tree = _Rename(_own_names(tree)).visit(tree)
    return json.dumps(_plain(tree), separators=(",", ":"))


def source_sha256(source: str) -> str:
    return hashlib.sha256(normalised(source).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    return source_sha256(Path(path).read_text(encoding="utf-8"))


def module_sha256(name: str) -> str:
    """The identity of the module importable as ``name``."""
    return source_sha256(inspect.getsource(importlib.import_module(name)))


def modules_sha256(modules: Mapping[str, str]) -> str:
    """One identity of several modules, given as ``{logical name: importable module name}``."""
    return _combined({logical: module_sha256(name) for logical, name in modules.items()})


def classes_sha256(classes: Iterable[type]) -> str:
    """The identity of the modules that define ``classes`` (a plugin class and its bases), in order;
    classes defined in a REPL or built in have none."""
    identities: list[str] = []
    for klass in classes:
        try:
            path = inspect.getsourcefile(klass)
        except TypeError:
            continue
        if path:
            identity = file_sha256(Path(path))
            if identity not in identities:
                identities.append(identity)
    return _combined(identities)


def _combined(data: object) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
