"""The example external plugin package (tests/example_plugin), installed with pip like a method
author's package, found through its entry point, run on the smoke benchmark, submitted and checked."""

import json
import os
import shutil
import subprocess
import sys

import pytest
from support import REPO, run_cli

PACKAGE = REPO / "tests" / "example_plugin"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """``pip install`` of the example into its own site folder (no network: no build isolation)."""
    site = tmp_path_factory.mktemp("site")
    source = shutil.copytree(PACKAGE, tmp_path_factory.mktemp("src") / PACKAGE.name)  # setuptools writes build/ next to it
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "--target", str(site), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert list(site.glob("benchbias_l1_ssim-0.1.0.dist-info/entry_points.txt"))
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}


@pytest.mark.slow
def test_installed_plugin_is_discovered_through_its_entry_point(installed):
    result = run_cli("plugins", env=installed)
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if x.strip().startswith("l1-ssim "))
    assert "paired" in line and "entry point 'l1-ssim' (benchbias-l1-ssim 0.1.0)" in line
    assert "l1-ssim" not in run_cli("plugins").stdout, "without the install it is not there"


@pytest.mark.slow
def test_external_plugin_runs_on_smoke_and_is_submitted_and_checked(installed, tmp_path):
    boards = tmp_path / "boards"
    env = {**installed, "BENCHBIAS_LEADERBOARDS": str(boards)}
    out = tmp_path / "run"
    result = run_cli(
        "run",
        "synthetic-smoke",
        "--translator",
        "l1-ssim",
        "--param",
        "filters=8",
        "--param",
        "blocks=1",
        "--param",
        "batch_size=4",
        "--param",
        "ssim_weight=1.0",
        "--out",
        str(out),
        "--no-progress",
        "--submit",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    results = json.loads((out / "results.json").read_text())
    assert list(results["methods"]) == ["l1-ssim"], "--translator without --methods runs only the plugin"
    method = results["methods"]["l1-ssim"]
    assert method["origin"]["source"] == "entry point"
    assert (method["origin"]["distribution"], method["origin"]["version"]) == ("benchbias-l1-ssim", "0.1.0")
    assert method["version"] == "benchbias-l1-ssim 0.1.0"
    assert method["params"]["ssim_weight"] == 1.0 and method["params"]["filters"] == 8 and method["steps"] == 6
    assert [c["ratio"] for c in method["cells"]] == [0.0, 0.5, 1.0]
    board = json.loads((boards / "synthetic-smoke.json").read_text())
    assert [(e["method"], e["version"]) for e in board["entries"]] == [("l1-ssim", "benchbias-l1-ssim 0.1.0")]

    checked = run_cli("check", str(out / "results.json"), "--against", str(boards / "synthetic-smoke.json"), "--method", "l1-ssim", env=env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "l1-ssim (benchbias-l1-ssim 0.1.0; seeds 0)" in checked.stdout and "check passed" in checked.stdout


@pytest.mark.slow
def test_bad_plugin_parameter_names_the_method_and_parameter(installed, tmp_path):
    result = run_cli("run", "synthetic-smoke", "--translator", "l1-ssim", "--param", "ssim_weight=-1", "--out", str(tmp_path), env=installed)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "methods.l1-ssim.params" in result.stderr and "ssim_weight" in result.stderr
