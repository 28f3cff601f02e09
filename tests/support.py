"""Helpers shared by the tests (a plain module: ``conftest`` names clash between test folders)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

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
