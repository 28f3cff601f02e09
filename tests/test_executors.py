"""Cells in worker processes: the same scores as one after another, and nothing lost to ``kill -9``."""

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from support import REPO, run_cli

from benchbias.cli import main
from benchbias.run.cells import CellJob
from benchbias.run.executors import LongestFirst, default_jobs, ray_connection_error, ray_host_port, ray_resources, use_cluster_token

NAN_TRANSLATOR = '''
import torch
import benchbias
from benchbias.api import Translator


class Diverges(Translator):
    """Trains nothing; its translations are NaN for seed 1."""

    name = "diverges"
    paired = True

    def fit(self, data, ctx):
        self.nan = ctx.seed == 1
        for _ in ctx.loop():
            pass

    def translate(self, source):
        return torch.full_like(source, float("nan")) if self.nan else source.clone()


@benchbias.hookimpl
def register_translators(register):
    register(Diverges)
'''


def small_benchmark(tmp_path: Path, steps: int) -> Path:
    """synthetic-smoke with enough steps per cell that a run can be killed between cells."""
    raw = yaml.safe_load((REPO / "benchmarks" / "synthetic-smoke.yaml").read_text())
    raw["name"] = "executor-test"
    raw["training"]["steps"] = steps
    raw["methods"] = {"l1": raw["methods"]["l1"]}
    path = tmp_path / "executor-test.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def untimed(results: dict) -> dict:
    return {name: [{k: v for k, v in cell.items() if not k.endswith("_time_s")} for cell in method["cells"]] for name, method in results["methods"].items()}


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_free_workers_take_the_longest_cells_first_once_their_cost_is_seen():
    jobs = [CellJob(m, 0, r, key=f"{m}{r}", label=f"{m} {r}") for r in (0.0, 0.5, 1.0) for m in ("cyclegan", "condgan", "l1")]
    order = LongestFirst(jobs)
    first = [order.next(), order.next()]  # two workers start in the runner's order
    assert [j.method for j in first] == ["cyclegan", "condgan"]
    order.finished(first[1], 20.0)  # condgan's cell ends first; l1 has not been tried yet
    third = order.next()
    assert third.method == "l1"
    order.finished(third, 9.0)
    # cyclegan is still running, longer than any finished cell: its cells come next, then condgan's, then l1's
    rest = []
    while (job := order.next()) is not None:
        rest.append(job)
        if job.method == "cyclegan":
            order.finished(job, 80.0)
    assert [j.method for j in rest] == ["cyclegan", "cyclegan", "condgan", "condgan", "l1", "l1"]
    assert [j.ratio for j in rest[:2]] == [0.5, 1.0], "the runner's order among cells of one method"
    assert sorted(first + [third] + rest, key=jobs.index) == jobs, "every cell exactly once"


@pytest.mark.slow
def test_parallel_cells_equal_sequential_ones_and_a_killed_run_resumes(tmp_path):
    bench = small_benchmark(tmp_path, steps=60)
    common = [str(bench), "--seeds", "0", "1", "--no-progress"]
    sequential = run_cli("run", *common, "--jobs", "1", "--threads", "1", "--out", str(tmp_path / "seq"))
    assert sequential.returncode == 0, sequential.stderr
    reference = json.loads((tmp_path / "seq" / "results.json").read_text())

    out = tmp_path / "par"
    exe = shutil.which("benchbias")
    command = [exe] if exe else [sys.executable, "-m", "benchbias"]
    parent = subprocess.Popen([*command, "run", *common, "--jobs", "2", "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not list(out.glob("cells/*/*.json")) and time.monotonic() < deadline and parent.poll() is None:
        time.sleep(0.05)
    workers = children_of(parent.pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    finished = {p: p.stat().st_mtime_ns for p in out.glob("cells/*/*.json")}
    assert 1 <= len(finished) < 6, "kill the run between its first and last cell"
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in workers), "worker processes outlived the killed runner"
    for path in finished:
        json.loads(path.read_text())  # complete JSON, never a torn file

    resumed = run_cli("run", *common, "--jobs", "2", "--out", str(out))
    assert resumed.returncode == 0, resumed.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["provenance"]["cells_reused"] == len(finished)
    assert {p: p.stat().st_mtime_ns for p in finished} == finished  # no finished cell recomputed
    assert not list(out.rglob("*.tmp"))
    assert untimed(results) == untimed(reference)  # identical scores to the sequential run
    assert results["provenance"]["device"].endswith("2 jobs x 1 thread each")
    assert results["provenance"]["compute_settings"] == reference["provenance"]["compute_settings"]


@pytest.mark.slow
def test_ctrl_c_stops_the_workers_at_once_and_keeps_finished_cells(tmp_path):
    bench = small_benchmark(tmp_path, steps=400)
    out = tmp_path / "out"
    exe = shutil.which("benchbias")
    command = [exe] if exe else [sys.executable, "-m", "benchbias"]
    # Three seeds (9 cells): when the first cell lands, seconds of work remain for the Ctrl-C to cut short.
    run = [*command, "run", str(bench), "--seeds", "0", "1", "2", "--jobs", "2", "--no-progress", "--out", str(out)]
    # A shell starts background jobs with Ctrl-C ignored, and the run would inherit that (as a CI job
    # started with `&` does): give the run the default handler a terminal's Ctrl-C meets.
    parent = subprocess.Popen(run, stderr=subprocess.PIPE, text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 300
    while not list(out.glob("cells/*/*.json")) and time.monotonic() < deadline and parent.poll() is None:
        time.sleep(0.05)
    workers = children_of(parent.pid)
    parent.send_signal(signal.SIGINT)
    stopped = time.monotonic()
    _, stderr = parent.communicate(timeout=60)
    assert len(list(out.glob("cells/*/*.json"))) < 9, "the run finished before the Ctrl-C"
    assert parent.returncode == 130 and "interrupted; finished cells are kept and a rerun resumes" in stderr, stderr
    assert time.monotonic() - stopped < 20, "Ctrl-C waited for the running cells"
    assert "Traceback" not in stderr, stderr
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in workers)
    assert list(out.glob("cells/*/*.json")) and not list(out.rglob("*.tmp"))


@pytest.mark.slow
def test_a_plugin_file_runs_in_workers_and_its_failure_is_one_line(tmp_path):
    bench = small_benchmark(tmp_path, steps=2)
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "diverges.py").write_text(NAN_TRANSLATOR)
    out = tmp_path / "out"
    failed = run_cli(
        "run", str(bench), "--translator", "diverges", "--seeds", "0", "1", "--jobs", "2", "--plugin-dir", str(plugins), "--out", str(out), "--no-progress"
    )
    assert failed.returncode == 2, failed.stderr
    lines = [line for line in failed.stderr.splitlines() if line.startswith("benchbias: error:")]
    assert len(lines) == 1 and "methods.diverges" in lines[0] and "seed 1" in lines[0] and "NaN or infinite" in lines[0], failed.stderr
    assert "Traceback" not in failed.stderr
    kept = sorted(p.name for p in out.glob("cells/diverges/*.json"))
    assert "r0.000-s0.json" in kept  # seed 0's cells (computed first) are kept


def test_cells_share_a_gpu_only_when_asked():
    assert default_jobs("cuda", 33) == 1, "one cell at a time on a GPU by default, in the runner's process"
    assert default_jobs("cuda", 33, cells_per_gpu=4) == 4 and default_jobs("cuda", 3, cells_per_gpu=4) == 3
    assert ray_resources(1 / 4, threads=1) == {"num_gpus": 0.25}, "Ray packs four cells on a GPU"
    assert ray_resources(1, threads=1) == {"num_gpus": 1}
    assert ray_resources(0, threads=2) == {"num_cpus": 2}


@pytest.mark.slow
def test_bad_jobs_and_executor_options_are_one_line(tmp_path, capsys):
    result = run_cli("run", "synthetic-smoke", "--jobs", "0", "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and result.stderr.strip() == "benchbias: error: --jobs 0: must be a positive number of worker processes"
    assert main(["run", "synthetic-smoke", "--address", "localhost:6379", "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == "benchbias: error: --address: applies to --executor ray"
    assert main(["run", "synthetic-smoke", "--cells-per-gpu", "0", "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == "benchbias: error: --cells-per-gpu 0: must be a positive number of cells"
    assert main(["run", "synthetic-smoke", "--device", "cpu", "--cells-per-gpu", "2", "--out", str(tmp_path / "out")]) == 2
    assert "--cells-per-gpu: applies to CUDA runs" in capsys.readouterr().err


def ray_worker_pids() -> list[int]:
    """Ray worker processes now running a cell (Ray titles them after the task's function)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"_compute_in_ray" in cmdline.read_bytes():
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return found


@pytest.mark.slow
def test_ray_cluster_gives_the_local_scores_and_retries_a_killed_worker(tmp_path):
    pytest.importorskip("ray")
    bench = small_benchmark(tmp_path, steps=60)
    common = [str(bench), "--seeds", "0", "--no-progress"]
    local = run_cli("run", *common, "--jobs", "1", "--threads", "1", "--out", str(tmp_path / "local"))
    assert local.returncode == 0, local.stderr

    ray_bin = Path(sys.executable).with_name("ray")
    # The documented recipe, with token authentication on (Ray's default from 2.59 on for local clusters).
    token = secrets.token_hex(16)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token}
    port = 26379 + os.getpid() % 1000
    head = subprocess.run(
        [str(ray_bin), "start", "--head", "--num-cpus", "2", "--port", str(port), "--include-dashboard", "false", "--disable-usage-stats"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert head.returncode == 0, head.stdout + head.stderr
    try:
        exe = shutil.which("benchbias")
        command = [exe] if exe else [sys.executable, "-m", "benchbias"]
        out = tmp_path / "ray"
        runner = subprocess.Popen(
            [*command, "run", *common, "--executor", "ray", "--address", f"127.0.0.1:{port}", "--out", str(out)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        killed = None
        deadline = time.monotonic() + 240
        while killed is None and runner.poll() is None and time.monotonic() < deadline:
            busy = ray_worker_pids()
            if busy:
                killed = busy[0]
                os.kill(killed, signal.SIGKILL)
            time.sleep(0.02)
        stdout, stderr = runner.communicate(timeout=300)
        assert runner.returncode == 0, stderr
        assert killed is not None, "no Ray worker was seen running a cell"
        results = json.loads((out / "results.json").read_text())
        assert results["provenance"]["cells_run"] == 3 and results["provenance"]["executor"].startswith("Ray tasks at 127.0.0.1")
        assert untimed(results) == untimed(json.loads((tmp_path / "local" / "results.json").read_text()))

        # A driver without the cluster's token is refused: one line saying how to give it.
        tokenless = {k: v for k, v in env.items() if k not in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN")}
        tokenless["HOME"] = str(tmp_path / "home")  # no ~/.ray/auth_token either
        refused = subprocess.run(
            [*command, "run", *common, "--executor", "ray", "--address", f"127.0.0.1:{port}", "--out", str(out)],
            capture_output=True, text=True, env=tokenless, timeout=300,
        )  # fmt: skip
        assert refused.returncode == 2, refused.stderr
        errors = [line for line in refused.stderr.splitlines() if line.startswith("benchbias: error:")]
        assert len(errors) == 1 and "Traceback" not in refused.stderr, refused.stderr
        assert "RAY_AUTH_MODE=token" in errors[0] and "RAY_AUTH_TOKEN" in errors[0], errors[0]
    finally:
        subprocess.run([str(ray_bin), "stop", "--force"], capture_output=True, env=env, timeout=120)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_address_nothing_answers_at_fails_at_once_with_one_line(tmp_path):
    pytest.importorskip("ray")
    port = free_port()
    started = time.monotonic()
    result = run_cli("run", "synthetic-smoke", "--executor", "ray", "--address", f"127.0.0.1:{port}", "--out", str(tmp_path / "out"), "--no-progress")
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith(f"benchbias: error: --address 127.0.0.1:{port}: nothing answers at 127.0.0.1:{port} (connection refused"), lines[0]
    assert time.monotonic() - started < 60 and not (tmp_path / "out").exists()


def test_ray_addresses_tokens_and_refusals(monkeypatch, tmp_path):
    assert ray_host_port("ray://head.example:10001") == ("head.example", 10001)
    assert ray_host_port("10.0.0.5:6379") == ("10.0.0.5", 6379) and ray_host_port("[::1]:6379") == ("::1", 6379)
    assert ray_host_port("auto") is None

    from benchbias.run import executors

    monkeypatch.setattr(executors, "RAY_TOKEN_FILE", tmp_path / "auth_token")
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    use_cluster_token()
    assert "RAY_AUTH_MODE" not in os.environ, "no token at hand: Ray's own default"
    (tmp_path / "auth_token").write_text("abc")
    use_cluster_token()
    assert os.environ["RAY_AUTH_MODE"] == "token", "a token on this machine is sent to the cluster"
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    use_cluster_token()
    assert os.environ["RAY_AUTH_MODE"] == "disabled", "the user's setting stands"

    class AuthenticationError(Exception):
        pass

    refused = str(ray_connection_error("h:6379", AuthenticationError("Unauthenticated: invalid token\nmore")))
    assert refused.startswith("--address h:6379: cannot connect to Ray: AuthenticationError: Unauthenticated: invalid token; ") and "RAY_AUTH_TOKEN" in refused
    assert "\n" not in refused
    other = str(ray_connection_error("h:6379", ConnectionError("GCS timed out")))
    assert other.startswith("--address h:6379: cannot connect to Ray: ConnectionError: GCS timed out; if the cluster uses token authentication")
