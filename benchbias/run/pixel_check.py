"""A warning for a method whose pixel error is far above the benchmark's baselines: most often a
training run that failed (a learning rate too high, a network that never fit), which otherwise
looks like a result. The baselines' pixel errors come from the committed leaderboard of the
benchmark, when there is one made under the same protocol and data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchbias.foundation.errors import BenchbiasError
from benchbias.leaderboard.board import leaderboard_path
from benchbias.records.validation import load_leaderboard

MAE_FACTOR = 2.0  # a method's MAE above this many times the worst baseline's is flagged
BASELINE_DISTRIBUTION = "benchbias"  # the baselines are the methods shipped with benchbias


def worst_baseline_mae(board: dict[str, Any], results: dict[str, Any]) -> tuple[str, float] | None:
    """(method, MAE) of the baseline entry with the highest pixel error on ``board``, when the board
    was made under the results' protocol and data; None otherwise."""
    if board.get("protocol_hash") != results["benchmark"]["protocol_hash"] or board.get("dataset_fingerprint") != results["dataset"]["fingerprint"]:
        return None
    baselines = [
        (entry["method"], entry["summary"]["mae"])
        for entry in board["entries"]
        if (entry.get("origin") or {}).get("distribution") == BASELINE_DISTRIBUTION and entry["summary"].get("mae") is not None
    ]
    return max(baselines, key=lambda pair: pair[1]) if baselines else None


def pixel_error_warnings(results: dict[str, Any], board_file: Path | None = None) -> dict[str, list[str]]:
    """One warning per method whose MAE is above :data:`MAE_FACTOR` times the worst baseline's on the
    committed leaderboard (``board_file``, by default the benchmark's in the leaderboard folder). No
    leaderboard, one of another protocol, or one that cannot be read: no warnings (``check`` and
    ``--submit`` report a bad leaderboard themselves)."""
    path = board_file or leaderboard_path(results["benchmark"]["name"])
    if not path.is_file():
        return {}
    try:
        board = load_leaderboard(path)
    except (BenchbiasError, OSError, ValueError):
        return {}
    worst = worst_baseline_mae(board, results)
    if worst is None:
        return {}
    baseline, limit = worst
    warnings = {}
    for name, method in results["methods"].items():
        mae = method["summary"].get("mae")
        if mae is not None and limit > 0 and mae > MAE_FACTOR * limit:
            warnings[name] = [
                f"its pixel error (MAE {mae:.3f}) is {mae / limit:.1f}x that of the worst baseline on the committed leaderboard "
                f"({baseline}, {limit:.3f}): its training may have failed; look at its loss curves before reading its verdict"
            ]
    return warnings
