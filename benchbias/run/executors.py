"""Where cells run: in this process, in local worker processes, or as Ray tasks on a cluster.

A cell is a :class:`~benchbias.run.cells.CellJob`: small and picklable (method, seed, fraction,
fingerprint, label); the unit of work is a :class:`~benchbias.run.cells.Program`. The run's inputs
(:class:`~benchbias.run.inputs.RunInputs`: slices, split, holdout, judges) are rebuilt once per worker
from a :class:`WorkerSpec` (the benchmark, the run options and the judges' weights as bytes), so
nothing but names and numbers crosses a process boundary per cell, and no worker needs the run's
output folder: a worker returns the cell and its array files, and the runner alone writes results.

Every executor's ``run(programs)`` yields ``(job, outcome)`` for each cell as programs finish, in any order.
"""

from __future__ import annotations

import ctypes
import hashlib
import multiprocessing
import os
import pickle
import queue
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from benchbias.foundation.config import Benchmark, ConfigError
from benchbias.foundation.errors import BenchbiasError
from benchbias.foundation.registry import load_registry
from benchbias.run.cells import CellJob, CellOutcome, Program, cell_path
from benchbias.run.compute import Report, compute_program
from benchbias.run.inputs import RunInputs, plugins_of, read_data
from benchbias.run.isolation import add_described
from benchbias.run.options import RunOptions, apply_tf32, select_device
from benchbias.run.progress import Board

EXECUTORS = ("local", "ray")
REPORT_INTERVAL_S = 1.0  # seconds between step reports a worker sends to the runner


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to rebuild the run's shared inputs."""

    bench: Benchmark
    options: RunOptions
    judge_weights: dict[str, bytes]  # each judge's weights file, by role
    threads: int  # torch threads per worker
    described: dict[str, dict] = field(default_factory=dict)  # an isolated run's translators, as the sandbox described them


def compute(inputs: RunInputs, out: Path | None, program: Program, report: Report | None) -> list[tuple[CellJob, CellOutcome]]:
    """Compute a program's cells. The translators work in the cells' own folders of the run folder
    ``out`` (same machine), or in a temporary folder (``out`` None)."""
    if out is not None:
        return list(zip(program.jobs, compute_program(inputs, program, report, [cell_path(out, job).with_suffix("") for job in program.jobs])))
    with tempfile.TemporaryDirectory(prefix="benchbias-cell-") as scratch:
        return list(zip(program.jobs, compute_program(inputs, program, report, [Path(scratch) / f"{i}" for i in range(len(program.jobs))])))


def worker_inputs(spec: WorkerSpec) -> RunInputs:
    """The run's inputs, rebuilt in a worker process from ``spec``."""
    torch.set_num_threads(spec.threads)
    options = spec.options
    if options.isolate:  # as the runner: benchbias's own plugins, the others described (run/isolation.py)
        registry = load_registry(own_only=True)
        add_described(registry, spec.described)
    else:
        registry = load_registry(options.plugin_dirs)
    plugins = plugins_of(spec.bench, registry, options.methods)
    data = read_data(spec.bench, plugins, registry, options.data_path, show_progress=False)
    device = select_device(options.device)
    apply_tf32(device, options.tf32)
    return RunInputs.with_judges(spec.bench, plugins, data, device, options.amp, spec.judge_weights).isolated_as(options)


# ---- in this process -----------------------------------------------------------------------------


class InProcess:
    """Cells one after another in this process, with torch's threads as set for the run."""

    name = "in-process"

    def __init__(self, inputs: RunInputs, out: Path, board: Board) -> None:
        self.inputs, self.out, self.board = inputs, out, board

    def run(self, programs: list[Program]) -> Iterator[tuple[CellJob, CellOutcome]]:
        for program in programs:
            outcomes = compute(self.inputs, self.out, program, self.board.update)
            self.board.close(program.label)
            yield from outcomes


# ---- local worker processes ------------------------------------------------------------------------

_worker_inputs: RunInputs | None = None
_worker_out: Path | None = None
_worker_reports: Any = None


def _die_with_parent(parent: int) -> None:
    """Linux: the kernel kills this worker when the runner dies (``kill -9`` included), so no orphan
    keeps computing beside a rerun. Elsewhere workers notice the closed pipe after their cell."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the runner died while this worker was still starting
        os._exit(1)


def _init_worker(pickled_spec: bytes, reports: Any, parent: int) -> None:
    global _worker_inputs, _worker_out, _worker_reports
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the runner's to handle
    _worker_reports = reports
    spec = pickle.loads(pickled_spec)
    _worker_inputs, _worker_out = worker_inputs(spec), spec.options.out


def _throttled(reports: Any) -> Report:
    last = [0.0]

    def report(label: str, done: int, total: int, losses: dict[str, float] | None) -> None:
        now = time.monotonic()
        if done == total or now - last[0] >= REPORT_INTERVAL_S:
            last[0] = now
            reports.put((label, done, total, losses))

    return report


def _compute_in_worker(program: Program) -> list[tuple[CellJob, CellOutcome]]:
    assert _worker_inputs is not None, "worker not initialised"
    # Same machine: the cell's own folder is the translator's working folder, as in the runner's process.
    return compute(_worker_inputs, _worker_out, program, _throttled(_worker_reports))


class LongestFirst:
    """Which program a free worker takes next: longest first, from the times seen so far.

    Programs are taken in the runner's order until every method has finished one; from then on, a
    free worker takes a program of the method whose programs have taken longest (CycleGAN's, on the
    default benchmark). The run then ends on short programs instead of one worker finishing a long
    one while the others idle (longest processing time first, Graham 1969). Works on anything with
    a ``method``: cells or programs."""

    def __init__(self, jobs: list) -> None:
        self.pending = list(jobs)
        self.seconds: dict[str, list[float]] = {}
        self.started: set[str] = set()

    def finished(self, job: Any, seconds: float) -> None:
        self.seconds.setdefault(job.method, []).append(seconds)

    def next(self) -> Any:
        if not self.pending:
            return None
        untried = [job for job in self.pending if job.method not in self.started]
        if untried or not self.seconds:
            job = (untried or self.pending)[0]
        else:
            cost = {method: sum(times) / len(times) for method, times in self.seconds.items()}
            job = max(self.pending, key=lambda j: cost.get(j.method, float("inf")))  # max keeps the runner's order among equals
        self.pending.remove(job)
        self.started.add(job.method)
        return job


class LocalProcesses:
    """Cells in ``jobs`` worker processes on this machine (spawned, each with its own torch threads).

    Worker processes rather than threads: a torch process with one thread per core stays fast when
    another program takes a core, where one process with a thread per core stalls at every parallel
    region waiting for the descheduled thread."""

    def __init__(self, spec: WorkerSpec, jobs: int, board: Board) -> None:
        self.spec, self.jobs, self.board = spec, jobs, board
        self.name = f"{jobs} local worker processes, {spec.threads} torch thread{'s' if spec.threads > 1 else ''} each"

    def run(self, jobs: list[Program]) -> Iterator[tuple[CellJob, CellOutcome]]:
        if not jobs:
            return
        context = multiprocessing.get_context("spawn")  # fork after torch has started threads can hang
        reports = context.Queue()
        stop = threading.Event()
        listener = threading.Thread(target=self._listen, args=(reports, stop), daemon=True)
        listener.start()
        # The spec crosses as bytes, unpickled by the worker's initializer. Unpickled on arrival, it would
        # import torch and the plugins (seconds) while the runner is still writing the worker's start-up
        # data into a pipe it cannot leave, and the workers would start one after another.
        pickled_spec = pickle.dumps(self.spec)
        pool = ProcessPoolExecutor(self.jobs, mp_context=context, initializer=_init_worker, initargs=(pickled_spec, reports, os.getpid()))
        finished_cleanly = False
        order = LongestFirst(jobs)
        pending: dict[Future, tuple[Program, float]] = {}

        def submit() -> None:
            job = order.next()
            if job is not None:
                pending[pool.submit(_compute_in_worker, job)] = (job, time.monotonic())

        try:
            for _ in range(self.jobs):
                submit()
            failure: BaseException | None = None
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=lambda f: jobs.index(pending[f][0])):
                    job, started = pending.pop(future)
                    self.board.close(job.label)
                    try:
                        outcomes = future.result()
                    except BenchbiasError as exc:
                        # A program failed: start no other, but keep those already running (their
                        # work is stored as they finish), then report the failure.
                        failure = failure or exc
                        continue
                    order.finished(job, time.monotonic() - started)
                    if failure is None:
                        submit()
                    yield from outcomes
            if failure is not None:
                raise failure
            finished_cleanly = True
        finally:
            if not finished_cleanly:  # Ctrl-C, or an unexpected error: stop the workers now
                for process in list(getattr(pool, "_processes", {}).values()):
                    process.kill()
            pool.shutdown(wait=finished_cleanly, cancel_futures=True)
            stop.set()
            listener.join(timeout=5)
            reports.close()
            reports.cancel_join_thread()
            self.board.close_all()

    def _listen(self, reports: Any, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                label, done, total, losses = reports.get(timeout=0.2)
            except queue.Empty:
                continue
            except Exception:  # a worker killed mid-report leaves a torn message: progress is not worth a traceback
                return
            self.board.update(label, done, total, losses)


# ---- Ray -------------------------------------------------------------------------------------------

RAY_RETRIES = 3
RAY_CONNECT_TIMEOUT_S = 20  # how long a cluster's address may take to answer before the run gives up
RAY_TOKEN_FILE = Path.home() / ".ray" / "auth_token"  # where `ray get-auth-token --generate` writes the token
_ray_worker_inputs: dict[tuple, RunInputs] = {}


class RayUnavailable(BenchbiasError, ConnectionError):
    """The Ray cluster at ``--address`` does not answer, or refuses this run."""


def ray_host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of ``host:port`` or ``ray://host:port``; None when the address names none (``auto``)."""
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        return None
    return host.strip("[]") or "127.0.0.1", int(port)


def check_ray_address(address: str | None, timeout: float = RAY_CONNECT_TIMEOUT_S) -> None:
    """One line at once when nothing answers at the cluster's address (Ray itself retries for many
    minutes without a word)."""
    target = ray_host_port(address) if address else None
    if target is None:
        return
    try:
        socket.create_connection(target, timeout=timeout).close()
    except OSError as exc:
        reason = "no answer" if isinstance(exc, TimeoutError) else (os.strerror(exc.errno).lower() if exc.errno else str(exc))
        raise RayUnavailable(
            f"--address {address}: nothing answers at {target[0]}:{target[1]} ({reason} within {timeout:g} s); "
            "is the cluster's head running (ray start --head) and its port reachable from here?"
        ) from None


def use_cluster_token() -> None:
    """Connect with token authentication when a token is at hand and ``RAY_AUTH_MODE`` is not set.

    Ray turns token authentication on for a head started where a token exists (``~/.ray/auth_token``,
    written by any local Ray of recent versions) but not for a driver given an explicit address, which
    the head then refuses. A token in ``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or the default file is
    sent; ``RAY_AUTH_MODE`` set by the user is left as it is."""
    if "RAY_AUTH_MODE" in os.environ:
        return
    if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH") or RAY_TOKEN_FILE.is_file():
        os.environ["RAY_AUTH_MODE"] = "token"


def ray_connection_error(address: str | None, exc: BaseException) -> RayUnavailable:
    """Why ``ray.init`` failed, as one line; a refused token says how to give one."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    # A driver without a token that a head requires sees either an authentication error or, from a
    # remote address, only a failed connection: both name how a token is given.
    hint = (
        "; if the cluster uses token authentication: set RAY_AUTH_MODE=token and its token in RAY_AUTH_TOKEN "
        "(`ray get-auth-token` on the head prints it), as when the head was started"
    )
    if "auth" in f"{type(exc).__name__} {exc}".lower():
        hint = hint.replace("; if the cluster uses", "; the cluster uses")
    return RayUnavailable(f"--address {address or '(local Ray)'}: cannot connect to Ray: {type(exc).__name__}: {first}{hint}")


def _compute_in_ray(spec: WorkerSpec, program: Program) -> list[tuple[CellJob, CellOutcome]]:
    # One Ray worker process serves many tasks: rebuild the shared inputs once per spec.
    key = (spec.bench.hash(), spec.threads, hashlib.sha256(b"".join(spec.judge_weights[role] for role in sorted(spec.judge_weights))).hexdigest())
    if key not in _ray_worker_inputs:
        _ray_worker_inputs.clear()
        _ray_worker_inputs[key] = worker_inputs(spec)
    return compute(_ray_worker_inputs[key], None, program, None)


def ray_resources(gpus: float, threads: int) -> dict[str, float]:
    """What a cell's Ray task asks for: ``gpus`` of a GPU on CUDA (a fraction lets cells share one),
    else one CPU per torch thread."""
    return {"num_gpus": gpus} if gpus else {"num_cpus": max(1, threads)}


class RayTasks:
    """Each cell a Ray task asking for one CPU per torch thread (or ``gpus`` of a GPU when the run's
    device is CUDA: 1/N lets N cells share one), retried when its worker dies. ``address`` is a
    cluster's (``ray://host:10001`` or ``host:6379``); none starts a local Ray on this machine.
    Workers read the data set from the same path (a shared folder, or the generated synthetic data,
    which each node generates for itself)."""

    def __init__(self, spec: WorkerSpec, address: str | None, board: Board, gpus: float = 0) -> None:
        self.spec, self.address, self.board = spec, address, board
        self.resources = ray_resources(gpus, spec.threads)
        self.name = f"Ray tasks at {address or 'a local Ray instance'}, {f'{gpus:g} GPU' if gpus else f'{spec.threads} CPU'} each"

    def run(self, jobs: list[Program]) -> Iterator[tuple[CellJob, CellOutcome]]:
        ray = import_ray()
        if not ray.is_initialized():
            if self.address:
                check_ray_address(self.address)
                use_cluster_token()
            try:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=True, configure_logging=False)
            except Exception as exc:  # Ray's own traceback says little more than its first line
                raise ray_connection_error(self.address, exc) from None
        task = ray.remote(max_retries=RAY_RETRIES, retry_exceptions=False, **self.resources)(_compute_in_ray)
        spec_ref = ray.put(self.spec)
        refs = {task.remote(spec_ref, job): job for job in jobs}
        try:
            while refs:
                ready, _ = ray.wait(list(refs), num_returns=1)
                refs.pop(ready[0])
                try:
                    outcomes = ray.get(ready[0])
                except ray.exceptions.RayTaskError as exc:
                    if isinstance(exc.cause, BenchbiasError):
                        raise exc.cause from None  # a translator's own error: its one line, not Ray's traceback
                    raise
                yield from outcomes
        finally:
            for ref in refs:
                ray.cancel(ref, force=True)


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError('--executor ray: Ray is not installed; install it with: pip install "benchbias[ray]"') from None
    return ray


def default_jobs(device_type: str, cells: int, cells_per_gpu: int = 1) -> int:
    """One worker per usable CPU core on the CPU (measured best on 2 cores: see the README);
    ``cells_per_gpu`` workers on a GPU (one, in this process, by default); never more workers than cells."""
    if device_type == "cuda":
        return max(1, min(cells_per_gpu, cells))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, cells))
