"""Run a benchmark into an output folder: read its data, load (or train once) its judges, then compute
every (method, fraction, seed) cell not stored yet, and assemble ``results.json`` and the report.

Each cell is an independent unit of work, stored in ``cells/<method>/`` as soon as it finishes and
reused on a rerun when its fingerprint matches (:mod:`benchbias.run.keys`); a stored cell whose
judges or metrics changed is scored again without training.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from benchbias.foundation.config import Benchmark, ModelConfig
from benchbias.foundation.registry import Registry
from benchbias.records.validation import check_results
from benchbias.report.html import write_report
from benchbias.run import executors, progress
from benchbias.run.cells import JUDGED, CellJob, Program, cell_path, npz_problem, store_cell, stored_cell, stored_translations
from benchbias.run.compute import PluginFailure, rescore, save_examples
from benchbias.run.inputs import RunInputs, plugins_of, read_data, resolve_judges
from benchbias.run.keys import cell_key, compute_settings, program_of, scoring_key
from benchbias.run.lock import holding
from benchbias.run.options import RunOptions, apply_tf32, resolve_precision, select_device, warn
from benchbias.run.pixel_check import pixel_error_warnings
from benchbias.run.results import kept_methods, results_of

Cell = tuple[str, int, float]  # (method, seed, target fraction)


class Run:
    """One invocation of a benchmark into an output folder. Constructing it checks every plugin and
    parameter (:func:`~benchbias.run.inputs.plugins_of`); :meth:`execute` does the work."""

    def __init__(self, bench: Benchmark, registry: Registry, options: RunOptions) -> None:
        self.precision = resolve_precision(bench, options.amp, options.tf32, options.override_precision)
        options = replace(options, amp=self.precision.amp, tf32=self.precision.tf32)
        self.bench, self.registry, self.options = bench, registry, options
        self.out = Path(options.out)
        self.device = select_device(options.device)
        apply_tf32(self.device, options.tf32)
        self.plugins = plugins_of(bench, registry, tuple(options.methods))

    def cells(self) -> list[tuple[ModelConfig, int, float]]:
        """Every (method, seed, fraction), methods interleaved: each method's cost per cell is known
        after the first few cells (a sound ETA), and an interrupted run has some of every method."""
        return [(m, seed, ratio) for seed in self.bench.seeds for ratio in self.bench.domains.target_fractions for m in self.plugins.methods]

    @property
    def jobs(self) -> int:
        """Worker processes for cells; 1 runs them in this process."""
        if self.options.jobs is not None:
            return self.options.jobs
        return executors.default_jobs(self.device.type, len(self.cells()), self.options.cells_per_gpu)

    @property
    def cell_threads(self) -> int:
        """torch threads each cell trains with: this process's in-process, one per worker otherwise."""
        if self.options.executor == "local" and self.jobs == 1:
            return torch.get_num_threads()
        return self.options.threads or 1

    def compute_settings(self) -> dict[str, Any]:
        return compute_settings(self.device, self.cell_threads, self.options.amp, self.precision.overridden)

    def cell_key(self, method: ModelConfig, seed: int, ratio: float, protocol: str) -> str:
        translator, entry = self.plugins.translators[method.name]
        return cell_key(self.bench, method, translator, entry, protocol, self.compute_settings(), seed, ratio)

    def programs_for(self, todo: list[CellJob], protocol: str) -> list[Program]:
        """The programs that compute the cells ``todo``: each cell alone, or with the other fractions
        its model trains with (all of them, so that a resumed run trains the very program a fresh run
        would; cells already stored are not replaced)."""
        jobs = {(job.method, job.seed, job.ratio): job for job in todo}
        methods = {m.name: m for m in self.plugins.methods}
        programs, planned = [], set()
        for job in todo:
            if (job.method, job.seed, job.ratio) in planned:
                continue
            method = methods[job.method]
            members = []
            for ratio in program_of(self.bench, self.plugins.translators[method.name][0], job.ratio):
                label = f"{job.method} r={ratio:.2f} seed={job.seed}"
                members.append(
                    jobs.get((job.method, job.seed, ratio))
                    or CellJob(job.method, job.seed, ratio, self.cell_key(method, job.seed, ratio, protocol), label, job.scoring_key)
                )
                planned.add((job.method, job.seed, ratio))
            programs.append(Program(tuple(members)))
        return programs

    def executor(self, inputs: RunInputs, board: progress.Board, jobs: int) -> executors.InProcess | executors.LocalProcesses | executors.RayTasks:
        if self.options.executor == "local" and self.jobs == 1:
            return executors.InProcess(inputs, self.out, board)
        spec = executors.WorkerSpec(self.bench, replace(self.options, out=self.out), inputs.judge_weights, self.cell_threads, self.registry.described)
        if self.options.executor == "ray":
            return executors.RayTasks(spec, self.options.address, board, gpus=1 / self.options.cells_per_gpu if self.device.type == "cuda" else 0)
        return executors.LocalProcesses(spec, jobs, board)

    def execute(self) -> dict[str, Any]:
        """Compute and assemble the run, holding the folder's lock (:mod:`benchbias.run.lock`). A
        plugin's failure ends it with one line naming the cell and a log file with the traceback;
        finished cells stay stored."""
        with holding(self.out):
            try:
                return self._execute()
            except PluginFailure as failure:
                raise PluginFailure(failure.where, f"{failure.problem}; traceback in {self.log_failure(failure)}; finished cells are kept", "") from None

    def log_failure(self, failure: PluginFailure) -> Path:
        """Write a plugin failure's traceback to ``logs/`` of the run folder; return the file."""
        method = failure.where.split(" ", 1)[0].removeprefix("methods.")
        path = self.out / "logs" / f"failure-{method}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{failure.where}: {failure.problem}\n\n{failure.details}", encoding="utf-8")
        return path

    def _execute(self) -> dict[str, Any]:
        started = datetime.now(timezone.utc)
        wall = time.perf_counter()
        show = self.options.progress
        data = read_data(self.bench, self.plugins, self.registry, self.options.data_path, show)
        judges, judges_trained = resolve_judges(self.bench, self.plugins, data, self.out / "judge", self.device, self.options.amp, show)
        weights = {role: Path(record["file"]).read_bytes() for role, record in judges.items()}
        inputs = RunInputs.with_judges(self.bench, self.plugins, data, self.device, self.options.amp, weights).isolated_as(self.options)
        save_examples(inputs, self.out)
        scored_with = scoring_key({role: record["sha256"] for role, record in judges.items()}, dict(self.plugins.metric_code), inputs.network_max)

        todo: list[CellJob] = []
        done: dict[Cell, dict] = {}
        reused = rescored = 0
        overall = progress.Cells([method.name for method, _, _ in self.cells()], show)
        for method, seed, ratio in self.cells():
            label = f"{method.name} r={ratio:.2f} seed={seed}"
            job = CellJob(method.name, seed, ratio, self.cell_key(method, seed, ratio, data.protocol_key), label, scored_with)
            path = cell_path(self.out, job)
            stored = stored_cell(path, job.key)
            if stored is not None and inputs.isolated and "isolation" not in stored:
                stored = None  # computed outside the sandbox: an isolated run computes it again
            if stored is None:
                todo.append(job)
                continue
            if stored.get("scored_with") != scored_with or npz_problem(path.with_suffix("") / JUDGED) is not None:
                outcome = rescore(inputs, job, stored, *stored_translations(path))  # the judges or metrics changed: no training needed
                store_cell(path, outcome)
                stored, rescored = outcome.cell, rescored + 1
            done[(method.name, seed, ratio)] = stored
            reused += 1
            overall.finished(label, method.name, reused=True)
        board = progress.Board(show)
        programs = self.programs_for(todo, data.protocol_key)
        executor = self.executor(inputs, board, min(self.jobs, max(len(programs), 1)))
        workers = executor.jobs if isinstance(executor, executors.LocalProcesses) else 1
        if todo and show:
            together = f" in {len(programs)} programs" if len(programs) < len(todo) else ""
            isolated = ", translators isolated" if inputs.isolated else ""
            print(f"cells: {len(todo)} to compute{together} ({executor.name}{isolated}){f', {reused} reused' if reused else ''}", file=sys.stderr)
        overall.workers = workers
        wanted = {(job.method, job.seed, job.ratio) for job in todo}
        for job, outcome in executor.run(programs):
            if (job.method, job.seed, job.ratio) not in wanted:
                continue  # trained again beside a missing cell of its program; the stored one stays
            store_cell(cell_path(self.out, job), outcome)
            done[(job.method, job.seed, job.ratio)] = outcome.cell
            seconds = outcome.cell["train_time_s"] + outcome.cell["translate_time_s"] if workers > 1 else None
            overall.finished(job.label, job.method, seconds=seconds)

        run = {
            "device": self.device,
            "compute_settings": self.compute_settings(),
            "jobs": workers,
            "executor": executor.name if todo else "none (every cell reused)",
            "seeds": self.bench.seeds,
            "started": started,
            "finished": datetime.now(timezone.utc),
            "wall_time_s": round(time.perf_counter() - wall, 1),
            "cells_run": len(todo),
            "cells_reused": reused,
            "cells_rescored": rescored,
            "judges_trained": judges_trained,
        }
        kept, notes = kept_methods(self.out, self.bench, data, scored_with, {m.name for m in self.plugins.methods})
        for note in notes:
            warn(note)
        if kept and show:
            print(f"kept from the folder's earlier results: {', '.join(kept)} (not run now; their stored cells stay)", file=sys.stderr)
        results = results_of(self.bench, self.plugins, data, judges, done, run, kept)
        for name, warnings in pixel_error_warnings(results).items():
            results["methods"][name]["warnings"] = warnings
            for warning in warnings:
                warn(f"{name}: {warning}")
        check_results(results, str(self.out / "results.json"))  # what others will read back must be valid
        write_report(self.out, results, with_results=True)
        return results
