import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Every test shares one session cache (synthetic data, prepared slices) outside $HOME."""
    cache = tmp_path_factory.getbasetemp() / "benchbias-cache"
    monkeypatch.setenv("BENCHBIAS_CACHE", str(cache))
    monkeypatch.setenv("BENCHBIAS_LEADERBOARDS", str(tmp_path_factory.getbasetemp() / "leaderboards"))
    monkeypatch.delenv("BENCHBIAS_PLUGIN_DIRS", raising=False)
    return cache


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """The installed ``benchbias`` console script, as a user would call it."""
    exe = shutil.which("benchbias")
    command = [exe] if exe else [sys.executable, "-m", "benchbias"]
    return subprocess.run(
        [*command, *args], cwd=cwd, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})}
    )
