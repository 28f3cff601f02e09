"""Code identities hash what code computes: moving, reformatting, re-importing, re-documenting or
renaming a module's own definitions keeps them; any change to the computation changes them."""

import pytest

from benchbias.foundation.code_identity import classes_sha256, modules_sha256, source_sha256

MODULE = '''
"""A module."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["Scaled", "scale"]

FACTOR = 2.0


def scale(x: float) -> float:
    """Twice x."""
    return x * FACTOR


class Scaled:
    """A scaled number."""

    value: float
    """Its value."""

    def __init__(self, x: float) -> None:
        self.value = scale(math.sqrt(x))
'''

SAME = [
    ("reformatted, comments", MODULE.replace("    return x * FACTOR", "    # doubled\n    return (\n        x *\n        FACTOR\n    )")),
    ("docstrings", MODULE.replace('"""Twice x."""', '"""Two times x, as documented elsewhere."""').replace('"""A module."""', "")),
    ("imports", MODULE.replace("import math\n", "import math\nimport os\nimport sys\n").replace("from __future__ import annotations\n", "")),
    ("__all__", MODULE.replace('__all__ = ["Scaled", "scale"]', "")),
    ("type-only imports", MODULE.replace("if TYPE_CHECKING:\n    from pathlib import Path\n", "")),
    ("own names", MODULE.replace("scale", "doubled").replace("Scaled", "Doubled").replace("FACTOR", "TWO")),
]

CHANGED = [
    ("a constant", MODULE.replace("FACTOR = 2.0", "FACTOR = 3.0")),
    ("an operator", MODULE.replace("x * FACTOR", "x + FACTOR")),
    ("a library call", MODULE.replace("math.sqrt(x)", "math.exp(x)")),
    ("an attribute", MODULE.replace("self.value = ", "self.number = ")),
    ("a new statement", MODULE + "\nEXTRA = 1\n"),
    ("a keyword argument", MODULE.replace("scale(math.sqrt(x))", "scale(x=math.sqrt(x))")),
]


@pytest.mark.parametrize("what, source", SAME, ids=[w for w, _ in SAME])
def test_what_does_not_compute_keeps_the_identity(what, source):
    assert source_sha256(source) == source_sha256(MODULE)


@pytest.mark.parametrize("what, source", CHANGED, ids=[w for w, _ in CHANGED])
def test_what_computes_changes_the_identity(what, source):
    assert source_sha256(source) != source_sha256(MODULE)


def test_a_docstring_only_function_is_an_empty_one():
    assert source_sha256('def f():\n    """Nothing."""\n') == source_sha256("def f():\n    pass\n")


def test_modules_enter_under_their_logical_names(tmp_path, monkeypatch):
    for folder in ("old", "new/deeper"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / "moved_module.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert modules_sha256({"m": "old.moved_module"}) == modules_sha256({"m": "new.deeper.moved_module"})
    assert modules_sha256({"m": "old.moved_module"}) != modules_sha256({"other": "old.moved_module"})


def test_classes_of_a_repl_have_no_source_and_no_identity():
    assert classes_sha256([int, dict]) == classes_sha256([])
