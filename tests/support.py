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
    return subprocess.run(
        [*command, *args], cwd=cwd, capture_output=True, text=True, timeout=600, env={**os.environ, **(env or {})}
    )
