"""One public API for plugin authors (``benchbias.api``), every package's public surface, and the
import paths of the earlier release, kept for one release with a deprecation warning."""

import ast
import importlib
import subprocess
import sys

import pytest
from support import REPO

import benchbias.api

OLD_PATHS = {  # the earlier release's import path -> where its names live now
    "benchbias.contract": "benchbias.foundation.contract",
    "benchbias.translation": "benchbias.nets.translation",
    "benchbias.networks": "benchbias.nets.networks",
    "benchbias.robustness": "benchbias.judges.robustness",
    "benchbias.metrics": "benchbias.foundation.scoretable",
    "benchbias.data.layouts": "benchbias.data.scanning",
}
PACKAGES = ["foundation", "data", "nets", "judges", "scoring", "records", "report", "leaderboard", "run"]
PLUGIN_FILES = sorted((REPO / "plugins").glob("*.py")) + sorted((REPO / "tests" / "example_plugin").glob("*.py"))


def test_the_api_names_everything_it_exports():
    assert len(set(benchbias.api.__all__)) == len(benchbias.api.__all__)
    missing = [name for name in benchbias.api.__all__ if not hasattr(benchbias.api, name)]
    assert missing == []


@pytest.mark.parametrize(
    "name",
    ["Translator", "NetworkTranslator", "AdversarialTranslator", "Param", "TrainContext", "PairedSlices", "UnpairedDomains", "Classifier", "Metric",
     "Score", "Evidence", "hookimpl", "adversarial_params", "frozen", "optimise", "l1_loss", "ModelStack", "resnet_generator", "ScanningLayout",
     "DataError", "to_network", "to_unit", "IntensityAugmentation", "DatasetLayout", "Case"],
)  # fmt: skip
def test_a_plugin_finds_what_it_needs_in_the_api(name):
    assert name in benchbias.api.__all__


@pytest.mark.parametrize("path", PLUGIN_FILES, ids=[p.name for p in PLUGIN_FILES])
def test_the_baselines_and_the_example_plugin_import_only_the_api(path):
    tree = ast.parse(path.read_text())
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    modules |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert {m for m in modules if m and m.split(".")[0] == "benchbias"} <= {"benchbias.api"}


@pytest.mark.parametrize("old", sorted(OLD_PATHS))
def test_an_old_import_path_still_works_and_warns(old, monkeypatch):
    monkeypatch.delitem(sys.modules, old, raising=False)
    with pytest.warns(DeprecationWarning, match=rf"^{old} is deprecated and goes in the next release: import from benchbias\.api"):
        module = importlib.import_module(old)
    new = importlib.import_module(OLD_PATHS[old])
    assert module.__all__ and all(getattr(module, name) is getattr(new, name) for name in module.__all__)


def test_the_old_plugin_imports_of_a_translator_still_work(monkeypatch):
    for old in ("benchbias.contract", "benchbias.translation"):
        monkeypatch.delitem(sys.modules, old, raising=False)
    with pytest.warns(DeprecationWarning):
        from benchbias.contract import Param
        from benchbias.translation import NetworkTranslator
    assert (Param, NetworkTranslator) == (benchbias.api.Param, benchbias.api.NetworkTranslator)


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_has_a_public_surface_that_resolves(package):
    module = importlib.import_module(f"benchbias.{package}")
    assert module.__all__ == sorted(module.__all__) and module.__all__
    for name in module.__all__:
        assert getattr(module, name) is not None
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018


def test_the_package_list_names_every_subpackage():
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "benchbias").rglob("__init__.py")}
    assert found <= listed


def test_reading_results_and_leaderboards_imports_no_torch():
    """Leaderboards, compare and check read files with the standard library, numpy and scipy: a
    package's public names load on first use, so importing these modules pulls in no torch."""
    code = "import sys, benchbias.leaderboard.board, benchbias.leaderboard.compare, benchbias.records.validation; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
