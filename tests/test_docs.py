"""The docs site stays true to the code: the generated reference pages match what the code generates
now (drift), the example plugins the guides include load and run, and the site builds with
``mkdocs build --strict``."""
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from support import REPO

DOCS = REPO / "docs"


def load_file(path: Path):
    spec = importlib.util.spec_from_file_location(f"docs_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def registered(module, hook: str) -> list[type]:
    classes: list[type] = []
    getattr(module, hook)(classes.append)
    return classes


def test_reference_pages_match_the_code():
    generator = load_file(DOCS / "gen_reference.py")
    pages = generator.generate()
    assert {p.name for p in pages} == {p.name for p in (DOCS / "reference").glob("*.md")}, "a reference page is not generated, or not committed"
    diffs = generator.drift(pages)
    assert not diffs, "the reference drifted from the code: run `python docs/gen_reference.py` and commit docs/reference/\n" + "\n".join(diffs)
