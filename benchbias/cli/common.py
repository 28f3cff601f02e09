"""What the command families of the ``benchbias`` command line share: options, checks and defaults."""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import Any

from benchbias.foundation.config import Benchmark, ConfigError

DEFAULT_BENCHMARK = "synthetic-quick"
EXIT_BAD_INPUT = 2
JOBS_ENV = "BENCHBIAS_JOBS"


def plugin_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plugin-dir", action="append", type=Path, default=[], metavar="DIR",
        help="extra folder of plugin files (repeatable; also $BENCHBIAS_PLUGIN_DIRS)",
    )  # fmt: skip


def benchmark_argument(parser: argparse.ArgumentParser, what: str = "benchmark name or YAML path") -> None:
    parser.add_argument("benchmark", nargs="?", default=DEFAULT_BENCHMARK, help=what)


def executor_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--jobs", type=int, metavar="N",
        help="cells at once, each in a worker process with --threads torch threads (default: $BENCHBIAS_JOBS, else one job per CPU core, "
        "--cells-per-gpu on CUDA); 1 runs them in this process",
    )  # fmt: skip
    parser.add_argument(
        "--threads", type=int,
        help="CPU threads for torch: per worker process (default 1), or of this process with --jobs 1 (default: torch's choice)",
    )  # fmt: skip
    parser.add_argument(
        "--executor", choices=("local", "ray"), default="local", help='where cells run: local processes, or Ray tasks (pip install "benchbias[ray]")'
    )
    parser.add_argument("--address", metavar="ADDR", help="with --executor ray: the cluster's address (default: start Ray on this machine)")
    parser.add_argument(
        "--cells-per-gpu", type=int, default=1, metavar="N",
        help="on CUDA, cells that share one GPU at once: Ray tasks ask for 1/N of a GPU, local runs default to N workers (default 1)",
    )  # fmt: skip


def jobs_setting(jobs: int | None) -> int | None:
    """``--jobs``, else ``$BENCHBIAS_JOBS``, checked; None: the run's default."""
    if jobs is None and os.environ.get(JOBS_ENV):  # a default for a machine or a CI job
        try:
            jobs = int(os.environ[JOBS_ENV])
        except ValueError:
            raise ConfigError(f"{JOBS_ENV}={os.environ[JOBS_ENV]}: must be a positive number of worker processes") from None
        if jobs < 1:
            raise ConfigError(f"{JOBS_ENV}={jobs}: must be a positive number of worker processes")
    if jobs is not None and jobs < 1:
        raise ConfigError(f"--jobs {jobs}: must be a positive number of worker processes")
    return jobs


def executor_settings(args: argparse.Namespace) -> dict:
    """The run options of the executor options, checked."""
    jobs = jobs_setting(args.jobs)
    if args.address and args.executor != "ray":
        raise ConfigError("--address: applies to --executor ray")
    if args.cells_per_gpu < 1:
        raise ConfigError(f"--cells-per-gpu {args.cells_per_gpu}: must be a positive number of cells")
    if args.cells_per_gpu > 1 and args.device == "cpu":
        raise ConfigError("--cells-per-gpu: applies to CUDA runs (--device cuda or auto on a machine with a GPU)")
    if args.executor == "ray":
        from benchbias.run.executors import check_ray_address, import_ray

        import_ray()  # one clear line now, not after the data is prepared
        check_ray_address(args.address)
    return {
        "jobs": jobs, "executor": args.executor, "address": args.address, "threads": args.threads, "cells_per_gpu": args.cells_per_gpu,
        "plugin_dirs": tuple(args.plugin_dir),
    }  # fmt: skip


def set_threads(threads: int | None) -> None:
    if threads is None:
        return
    if threads < 1:
        raise ConfigError(f"--threads {threads}: must be a positive number of CPU threads")
    import torch

    torch.set_num_threads(threads)


def with_seeds(bench: Benchmark, seeds: list[int] | None) -> Benchmark:
    if not seeds:
        return bench
    if len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ConfigError(f"--seeds {' '.join(map(str, seeds))}: must be distinct non-negative integers")
    return dataclasses.replace(bench, seeds=tuple(seeds))


def folder_problem(path: Path) -> str | None:
    """Why ``path`` cannot be (or become) a folder: it, or a folder above it, is a file."""
    for part in (path, *path.parents):
        if part.exists():
            if part.is_dir():
                return None
            return "is a file, not a folder" if part == path else f"{part} is a file, so it cannot hold a folder"
    return None


def check_results_folder(out: Path) -> None:
    problem = folder_problem(out)
    if problem:
        raise ConfigError(f"--out {out}: {problem}")


def fmt_or_na(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def key_values(items: list[str], option: str) -> dict[str, Any]:
    """``KEY=VALUE`` items of the command-line ``option`` (e.g. ``--param``) as a dict, each VALUE read
    as YAML; a malformed item is one line naming the option."""
    import yaml

    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{option} {item}: expected KEY=VALUE")
        try:
            params[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ConfigError(f"{option} {item}: VALUE is not valid YAML") from None
    return params
