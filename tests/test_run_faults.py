"""A run's own faults, through the real command line: a plugin that raises, a tensor on the wrong
device, an unwritable or busy results folder, a leaderboard that cannot take the results. Each is one
line and exit 2; the traceback goes to a log file in the run folder; finished cells stay stored."""

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from support import run_cli

BROKEN = '''
import os

import torch
from benchbias.api import NetworkTranslator, hookimpl, l1_loss, optimise


class Broken(NetworkTranslator):
    """Trains the model of target fraction 0; the others fail in training_step, translate or on the wrong device."""
    name = "broken"
    paired = True

    def build(self):
        self.generator = self.new_generator()
        self.opt = self.adam(self.generator)

    def training_step(self, source, target, ctx):
        fault = os.environ.get("BROKEN_FAULT", "step")
        self.faulty = not ctx.workdir.name.startswith("r0.000")
        if self.faulty and fault == "step":
            raise ValueError("the plugin's own bug")
        if self.faulty and fault == "device":
            source = source.to("cuda:0" if ctx.device.type == "cpu" else "cpu")  # a tensor on the wrong device
        loss = l1_loss(self.generator(source), target)
        optimise(self.opt, loss)
        return {"l1": loss.detach()}

    def translate(self, source):
        if self.faulty and os.environ.get("BROKEN_FAULT") == "translate":
            raise KeyError("no such key")
        return super().translate(source)


@hookimpl
def register_translators(register):
    register(Broken)
'''


def broken_plugin(tmp_path):
    folder = tmp_path / "plugins"
    folder.mkdir(exist_ok=True)
    (folder / "broken.py").write_text(BROKEN)
    return folder


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith("benchbias: error: "), lines[0]
    return lines[0]


def run_broken(tmp_path, fault, *extra):
    out = tmp_path / "run"
    args = ["run", "synthetic-smoke", "--translator", "broken", "--plugin-dir", str(broken_plugin(tmp_path)), "--out", str(out), "--no-progress"]
    return out, run_cli(*args, "--device", "cpu", *extra, env={"BROKEN_FAULT": fault})


def log_named_in(line: str, out):
    assert f"traceback in {out / 'logs'}" in line, line
    path = out / "logs" / "failure-broken.log"
    return path.read_text()


FAULTS = {  # what fails, in which call, and how the line says it
    "step": ("fit()", "ValueError: the plugin's own bug (in training_step, broken.py line"),
    "translate": ("translate()", "KeyError: 'no such key' (in translate, broken.py line"),
    "device": ("fit()", "(in training_step, broken.py line"),
}


@pytest.mark.slow
def test_a_plugin_that_raises_is_one_line_naming_the_cell_with_the_traceback_in_a_log(tmp_path):
    # One run folder for every fault: the judges and the finished cell of fraction 0 are reused.
    for fault, (call, problem) in FAULTS.items():
        out, result = run_broken(tmp_path, fault)
        assert result.returncode == 2, result.stderr
        line = one_line(result.stderr)
        assert "methods.broken (plugin broken) at target fraction 0.5, seed 0: " + call + " raised " in line, line
        assert problem in line and "finished cells are kept" in line, line
        log = log_named_in(line, out)
        assert "Traceback (most recent call last)" in log and "broken.py" in log
        assert [p.name for p in (out / "cells" / "broken").glob("*.json")] == ["r0.000-s0.json"], "the finished cell is stored"
        assert not (out / "results.json").exists()
    # the same in local worker processes: the failure crosses the process boundary as one line
    out, result = run_broken(tmp_path, "step", "--jobs", "2")
    assert result.returncode == 2, result.stderr
    line = one_line(result.stderr)
    assert "methods.broken (plugin broken) at target fraction " in line and "seed 0: fit() raised ValueError: the plugin's own bug" in line, line
    assert "Traceback (most recent call last)" in log_named_in(line, out)
    assert [p.name for p in (out / "cells" / "broken").glob("*.json")] == ["r0.000-s0.json"]


def test_an_unwritable_results_folder_is_one_line(tmp_path):
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        out = locked / "run"
    else:
        out = "/sys/benchbias-run"  # root writes through permissions; sysfs refuses a new folder even to root
        try:
            os.mkdir(out)
            os.rmdir(out)
            pytest.skip("no folder here refuses root")
        except OSError:
            pass
    result = run_cli("run", "synthetic-smoke", "--methods", "l1", "--out", str(out), "--no-progress")
    assert result.returncode == 2, result.stderr
    line = one_line(result.stderr)
    assert line.startswith(f"benchbias: error: --out {out}: cannot write there ("), line


def test_a_second_run_into_a_busy_folder_refuses_at_once_naming_the_holder(tmp_path):
    from benchbias.run.lock import LOCK_FILE

    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import sys, time; from benchbias.run.lock import holding; from pathlib import Path\n"
         f"with holding(Path({str(out)!r})):\n    print('held', flush=True); time.sleep(120)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        result = run_cli("run", "synthetic-smoke", "--methods", "l1", "--out", str(out), "--no-progress")
        assert result.returncode == 2, result.stderr
        line = one_line(result.stderr)
        assert f"another benchbias run (pid {holder.pid}) is using this folder" in line, line
        assert time.monotonic() - started < 60 and not (out / "cells").exists(), "refused before any work"
    finally:
        holder.kill()
        holder.wait()
    # the holder was killed: its lock file stays behind, and no longer blocks
    assert (out / LOCK_FILE).read_text().strip() == str(holder.pid)
    from benchbias.run.lock import holding

    with holding(out):
        assert (out / LOCK_FILE).read_text().strip() == str(os.getpid())


def test_submit_checks_the_leaderboard_before_computing(tmp_path):
    boards = tmp_path / "boards"
    boards.mkdir()
    (boards / "synthetic-smoke.json").write_text('{"schema": "benchbias.leaderboard/3", "entries": [')  # torn
    out = tmp_path / "run"
    result = run_cli("run", "synthetic-smoke", "--methods", "l1", "--out", str(out), "--no-progress", "--submit", env={"BENCHBIAS_LEADERBOARDS": str(boards)})
    assert result.returncode == 2, result.stderr
    line = one_line(result.stderr)
    assert f"{boards / 'synthetic-smoke.json'}: (top level): is not valid JSON" in line, line
    assert not out.exists(), "nothing computed"
    (boards / "synthetic-smoke.json").write_text(json.dumps({"schema": "benchbias.leaderboard/3"}))
    result = run_cli("run", "synthetic-smoke", "--methods", "l1", "--out", str(out), "--no-progress", "--submit", env={"BENCHBIAS_LEADERBOARDS": str(boards)})
    assert result.returncode == 2 and str(boards / "synthetic-smoke.json") in one_line(result.stderr)
    assert not out.exists()
    shutil.rmtree(boards)
