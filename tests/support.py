"""Helpers shared by the tests (a plain module: ``conftest`` names clash between test folders)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """The installed ``benchbias`` console script, as a user would call it."""
    exe = shutil.which("benchbias")
    command = [exe] if exe else [sys.executable, "-m", "benchbias"]
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})})


def core_scores(translated, real, tumor_mask, source_is_tumor, p_translated, p_real, out_of_range=0.0) -> dict:
    """The judge's and the pixel-error scores of one cell, computed by benchbias's own metrics."""
    import numpy as np

    from benchbias.foundation.contract import Evidence
    from benchbias.scoring.metrics import JudgeCalls, PixelDifference, score_cell

    n = len(source_is_tumor)
    evidence = Evidence(
        source=real,
        translated=translated,
        real=real,
        tumor_mask=tumor_mask,
        source_is_tumor=np.asarray(source_is_tumor),
        brain_fraction=np.ones(n),
        out_of_range=np.full(n, out_of_range),
        p_tumor=np.asarray(p_translated),
        p_tumor_real=np.asarray(p_real),
    )
    return score_cell([JudgeCalls(), PixelDifference()], evidence)[0]


ORACLES = Path(__file__).parent / "oracles"
ORACLE_NAMES = ["oracle-cache", "oracle-stack-walker", "oracle-scorer-patcher", "oracle-network", "oracle-import-patcher", "oracle-lookup"]


def sandbox_or_skip() -> None:
    from benchbias.sandbox import IsolationUnavailable, bubblewrap_binary

    try:
        bubblewrap_binary()
    except IsolationUnavailable as exc:
        pytest.skip(f"this machine cannot isolate: {exc}")


def public_holdout(cache: Path) -> dict:
    """The smoke benchmark's holdout source slices and real targets as translators see them: what an
    author can regenerate from the public recipe (oracle-lookup ships them)."""
    from dataclasses import replace

    from benchbias.foundation.benchmark_files import find_benchmark, load_benchmark
    from benchbias.foundation.registry import load_registry
    from benchbias.nets.scale import to_network, unit_images
    from benchbias.run.inputs import plugins_of, read_data

    bench = load_benchmark(find_benchmark("synthetic-smoke"))
    registry = load_registry(own_only=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCHBIAS_CACHE", str(cache))
        data = read_data(bench, plugins_of(replace(bench, methods=()), registry), registry, show_progress=False)
    m = bench.slices.network_max
    return {"source": data.holdout_source.numpy(), "target": to_network(unit_images(data.holdout.target), m).numpy()}
