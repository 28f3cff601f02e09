"""Isolated translators (benchbias run --isolate): each oracle of tests/oracles/ finds ground truth,
the network or the runner's scorer when it runs in the runner's process, and finds nothing in the
sandbox, where its scores are those of what it really output."""

import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support import ORACLE_NAMES, run_cli, sandbox_or_skip

from benchbias.sandbox import sandboxed_command

ORACLES = Path(__file__).parent / "oracles"


def translations(out: Path, name: str) -> np.ndarray:
    return np.concatenate([np.load(p)["translated"].ravel() for p in sorted((out / "cells" / name).glob("*/translations.npz"))])


def results(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["oracle-cache", "oracle-stack-walker", "oracle-network"])
def test_an_oracle_finds_in_process_what_it_cannot_find_isolated(oracle_runs, name):
    assert translations(oracle_runs[False], name).min() == 1.0  # white: it found it (the canary works)
    assert translations(oracle_runs[True], name).max() == 0.0  # black: nothing to find in the sandbox


@pytest.mark.slow
def test_a_patched_scorer_scores_only_the_patcher_s_own_process(oracle_runs):
    def mae(out):
        return [c["scores"]["mae"] for c in results(out)["methods"]["oracle-scorer-patcher"]["cells"]]

    assert max(mae(oracle_runs[False])) < 1e-3  # its black output scored as the real targets
    assert min(mae(oracle_runs[True])) > 0.05  # isolated: scored as the black images it returned
    assert translations(oracle_runs[True], "oracle-scorer-patcher").max() == 0.0


@pytest.mark.slow
def test_a_plugin_module_that_patches_the_scorer_at_import_is_never_imported_by_an_isolated_run(oracle_runs):
    def mae(out):
        return [c["scores"]["mae"] for c in results(out)["methods"]["oracle-import-patcher"]["cells"]]

    assert max(mae(oracle_runs[False])) < 1e-3  # imported by the runner: its gray output scored as the real targets
    assert min(mae(oracle_runs[True])) > 0.05  # isolated: only the sandbox imported it
    assert {round(float(v), 3) for v in translations(oracle_runs[True], "oracle-import-patcher")} == {0.5}


@pytest.mark.slow
def test_isolated_cells_say_where_they_ran_and_in_process_ones_do_not(oracle_runs):
    for name in ORACLE_NAMES:
        assert {c.get("isolation", "").split(" ")[0] for c in results(oracle_runs[True])["methods"][name]["cells"]} == {"bubblewrap"}
        assert all("isolation" not in c for c in results(oracle_runs[False])["methods"][name]["cells"])


def test_the_sandbox_reads_only_what_it_is_given(tmp_path):
    """A folder given as readable is read-only inside; a hidden folder inside it is empty; the rest
    of the file system (here the test's own folder) does not exist."""
    sandbox_or_skip()
    readable, elsewhere = tmp_path / "plugins", tmp_path / "cache"
    (readable / "secret").mkdir(parents=True)
    elsewhere.mkdir()
    (readable / "plugin.py").write_text("visible")
    (readable / "secret" / "targets.npy").write_text("hidden")
    (elsewhere / "slices.npz").write_text("hidden")
    script = (
        "import os, sys\n"
        f"print(open({str(readable / 'plugin.py')!r}).read())\n"
        f"print(os.listdir({str(readable / 'secret')!r}))\n"
        f"print(os.path.exists({str(elsewhere)!r}))\n"
        f"try:\n    open({str(readable / 'new.py')!r}, 'w')\nexcept OSError as exc:\n    print(type(exc).__name__)\n"
    )
    command = sandboxed_command([sys.executable, "-c", script], readable=[readable], hidden=[readable / "secret"])
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:4] == ["visible", "[]", "False", "OSError"]
    assert (readable / "secret" / "targets.npy").read_text() == "hidden"  # untouched outside


def test_the_sandbox_has_no_network_and_sees_no_other_process(tmp_path):
    sandbox_or_skip()
    server = socket.create_server(("127.0.0.1", 0))
    script = (
        "import os, socket\n"
        "try:\n"
        f"    socket.create_connection(('127.0.0.1', {server.getsockname()[1]}), timeout=2); print('connected')\n"
        "except OSError:\n    print('no network')\n"
        "print(sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))\n"
    )
    try:
        result = subprocess.run(sandboxed_command([sys.executable, "-c", script]), capture_output=True, text=True, timeout=60)
    finally:
        server.close()
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "no network"
    assert len(json.loads(lines[1])) <= 3  # bubblewrap's init, the shell-less child: not the runner's processes


@pytest.mark.slow
def test_an_isolated_translator_trains_as_in_the_runner_s_process(oracle_runs):
    """The same seeds, steps and arithmetic: the same translations and loss curves. (Its scores in
    the runner's process are not compared: there the scorer patcher forged them too.)"""

    def cells(out):
        return [(c["fingerprint"], c["loss_curve"]) for c in results(out)["methods"]["l1"]["cells"]]

    assert cells(oracle_runs[True]) == cells(oracle_runs[False])
    np.testing.assert_array_equal(translations(oracle_runs[True], "l1"), translations(oracle_runs[False], "l1"))


def test_an_isolated_run_names_a_bad_parameter_of_a_described_translator_in_one_line(tmp_path):
    sandbox_or_skip()
    result = run_cli(
        "run", "synthetic-smoke", "--translator", "oracle-cache", "--param", "nope=1", "--plugin-dir", str(ORACLES), "--isolate",
        "--out", str(tmp_path / "out"), "--no-progress",
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "methods.oracle-cache" in lines[0] and "unknown parameter 'nope'" in lines[0], lines
