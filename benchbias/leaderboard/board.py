"""Leaderboards: ``leaderboards/<benchmark>.json`` is the record; ``<benchmark>.md`` and the figure
``<benchmark>.png`` are rendered from it.

One entry per (method, version), carrying everything needed to judge it without the run folder (plugin
distribution and version or file and sha256, parameters, protocol hash, dataset fingerprint, seeds, every
cell's scores, per-fraction means, the summary with intervals over seeds, the classifier's accuracy,
package versions, device, times). Both files are validated before written and rewritten atomically."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock

from benchbias.foundation.benchmark_files import find_benchmark, load_benchmark
from benchbias.foundation.config import ConfigError
from benchbias.foundation.errors import BenchbiasError
from benchbias.foundation.jsonio import dumps, write_atomically
from benchbias.foundation.scoretable import ScoreTable
from benchbias.leaderboard.page import ranked, render
from benchbias.leaderboard.verified import check_signatures
from benchbias.records.schemas import LEADERBOARD_SCHEMA
from benchbias.records.validation import check_leaderboard, load_leaderboard
from benchbias.scoring.summary import RANKING_RULE, reference_methods

LEADERBOARD_ENV = "BENCHBIAS_LEADERBOARDS"
LOCK_TIMEOUT_S = 120


class LeaderboardError(BenchbiasError, ValueError):
    """A submission does not fit the leaderboard; the message names the field."""


COMMITTED_BOARDS = Path(__file__).resolve().parents[2] / "leaderboards"  # benchbias/leaderboard/board.py -> the checkout


def leaderboard_dir() -> Path:
    """``$BENCHBIAS_LEADERBOARDS``, else the checkout's ``leaderboards/``, else ``./leaderboards``."""
    if os.environ.get(LEADERBOARD_ENV):
        return Path(os.environ[LEADERBOARD_ENV])
    return COMMITTED_BOARDS if COMMITTED_BOARDS.is_dir() else Path.cwd() / "leaderboards"


def leaderboard_path(benchmark: str, folder: Path | None = None) -> Path:
    """A leaderboard JSON path as given, or the named benchmark's file in :func:`leaderboard_dir`."""
    if benchmark.endswith(".json"):
        return Path(benchmark)
    return (folder or leaderboard_dir()) / f"{benchmark}.json"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


CELL_FIELDS_LEFT_IN_RESULTS = ("ci95", "loss_curve")


def entry(results: dict[str, Any], method: str) -> dict[str, Any]:
    """The leaderboard entry of one method of a validated results file."""
    bench, prov, m = results["benchmark"], results["provenance"], results["methods"][method]
    c = results["classifier"]
    return {
        "method": method,
        **{k: m[k] for k in ("plugin", "version", "origin", "paired", "params", "steps", "per_fraction", "summary")},
        # Cells keep their scores; their bootstrap intervals and loss curves stay in the run's
        # results.json (the intervals were over half of a leaderboard's size, and nothing compares
        # either across entries).
        "cells": [{k: v for k, v in cell.items() if k not in CELL_FIELDS_LEFT_IN_RESULTS} for cell in m["cells"]],
        "benchmark": bench["name"],
        "protocol_hash": bench["protocol_hash"],
        "dataset_fingerprint": results["dataset"]["fingerprint"],
        "seeds": prov["seeds"],
        "classifier": {k: c[k] for k in ("name", "version", "origin", "holdout_accuracy", "holdout_sensitivity", "holdout_specificity", "sha256")},
        **({"extra_judges": results["extra_judges"]} if results.get("extra_judges") else {}),
        "packages": prov["packages"],
        "python": prov["python"],
        "platform": prov["platform"],
        "device": prov["device"],
        **({"machine": prov["machine"]} if prov.get("machine") else {}),
        "git_commit": prov["git_commit"],
        "benchbias_version": prov["benchbias_version"],
        "wall_time_s": prov["wall_time_s"],
        "compute_time_s": round(sum(c.get("train_time_s", 0) + c.get("translate_time_s", 0) for c in m["cells"]), 1),
        "cells_run": prov["cells_run"],
        "cells_reused": prov["cells_reused"],
        "run_started": prov["started"],
        "run_finished": prov["finished"],
        "submitted": now(),
    }


def check_protocol(results: dict[str, Any], board: dict[str, Any] | None, source: str) -> None:
    """Refuse results that were not made under the benchmark's committed protocol and data."""
    bench = results["benchmark"]
    try:
        committed = load_benchmark(find_benchmark(bench["name"])).protocol_hash()
    except ConfigError:
        committed = None  # a benchmark only known by its leaderboard
    if committed is not None and committed != bench["protocol_hash"]:
        raise LeaderboardError(
            f"{source}: benchmark.protocol_hash: {bench['protocol_hash'][:12]} differs from {committed[:12]} of the "
            f"benchmark file '{bench['name']}' (the run used another protocol; rerun with the committed benchmark)"
        )
    if board is None:
        return
    mine = {"protocol_hash": bench["protocol_hash"], "dataset_fingerprint": results["dataset"]["fingerprint"]}
    for key, value in mine.items():
        if value != board[key]:
            raise LeaderboardError(
                f"{source}: {key}: {value[:12]} differs from the leaderboard's {board[key][:12]} ({bench['name']}.json); "
                "scores made under another protocol or data set are not comparable"
            )
    for role, record in results.get("extra_judges", {}).items():
        theirs = board.get("extra_judges", {}).get(role)
        if theirs is not None and theirs != record["sha256"]:
            raise LeaderboardError(
                f"{source}: extra_judges.{role}.sha256: scored by {record['sha256'][:12]}, the leaderboard's {role} is {theirs[:12]} "
                f"({bench['name']}.json); its scores would not be comparable (use the benchmark's pinned {role})"
            )
    missing = sorted(set(board.get("extra_judges", {})) - set(results.get("extra_judges", {})))
    if missing:
        raise LeaderboardError(
            f"{source}: extra_judges.{missing[0]}: the leaderboard records a {missing[0]} ({bench['name']}.json) and these results have none; "
            "every entry is scored by every judge of the board (run the committed benchmark file, which has it)"
        )
    try:
        ScoreTable.from_json(board["score_table"]).merged(ScoreTable.from_json(results["score_table"]))
    except ValueError as exc:
        raise LeaderboardError(f"{source}: score_table: {exc}; the leaderboard declares it otherwise") from None
    judge = results["classifier"]["sha256"]
    if judge != board["judge_sha256"]:
        raise LeaderboardError(
            f"{source}: classifier.sha256: judged by {judge[:12]}, the leaderboard's judge is {board['judge_sha256'][:12]} "
            f"({bench['name']}.json); scores from another judge are not comparable (use the benchmark's pinned judge)"
        )


def shipped(method: dict[str, Any]) -> bool:
    """Whether a results method or leaderboard entry is a baseline shipped with benchbias."""
    return bool(reference_methods({"m": method}))


def board_seeds(results: dict[str, Any], board: dict[str, Any] | None, chosen: list[str]) -> tuple[list[int], str]:
    """The seeds every entry of the board must have, and where they come from: the seeds of the board's
    shipped baselines; on a board without them, those of the shipped baselines submitted now; else
    those of the baselines on benchbias's committed board of the benchmark (so a plugin's own
    reference board takes the public board's seeds); else the benchmark file's ``seeds:``."""
    name = results["benchmark"]["name"]
    if board is not None:
        seeds = baseline_seeds(board)
        if seeds:
            return seeds, f"the seeds of the baselines on the {name} leaderboard"
    if any(shipped(results["methods"][m]) for m in chosen):
        return list(results["provenance"]["seeds"]), "the seeds of the baselines submitted with it"
    committed = COMMITTED_BOARDS / f"{name}.json"
    if committed.is_file():
        seeds = baseline_seeds(load_leaderboard(committed))
        if seeds:
            return seeds, f"the seeds of the baselines on benchbias's committed {name} leaderboard"
    try:
        return list(load_benchmark(find_benchmark(name)).seeds), f"the seeds of the benchmark file '{name}'"
    except ConfigError:
        return list(results["provenance"]["seeds"]), "its own seeds (no benchmark file)"


def baseline_seeds(board: dict[str, Any]) -> list[int]:
    """The seeds of a board's shipped baselines (the smallest set, should they differ); [] without any."""
    seeds = {tuple(e["seeds"]) for e in board["entries"] if shipped(e)}
    return list(min(seeds)) if seeds else []


def committed_steps(name: str, method: str) -> int | None:
    """The training steps of ``method`` under the committed benchmark file: its own, or the
    benchmark's ``training.steps`` for a method the file does not name; None without the file."""
    try:
        bench = load_benchmark(find_benchmark(name))
    except ConfigError:
        return None
    declared = {m.name: m.steps for m in bench.methods}
    return declared.get(method, bench.training_steps) or None


def check_entry(results: dict[str, Any], board: dict[str, Any] | None, source: str, method: str, seeds: tuple[list[int], str]) -> None:
    """The board's identity, per method: exactly the board's seeds and the committed step budget."""
    name, mine = results["benchmark"]["name"], results["provenance"]["seeds"]
    if sorted(mine) != sorted(seeds[0]):
        raise LeaderboardError(
            f"{source}: provenance.seeds: {mine} for '{method}'; the {name} leaderboard takes exactly seeds {seeds[0]} ({seeds[1]}), "
            f"so that no entry is a chosen seed (rerun with --seeds {' '.join(map(str, seeds[0]))})"
        )
    steps, want = results["methods"][method]["steps"], committed_steps(name, method)
    if want is not None and steps != want:
        raise LeaderboardError(f"{source}: methods.{method}.steps: {steps}; the benchmark file '{name}' trains it for {want} steps (run the committed file)")


def check_replace(old: dict[str, Any], new: dict[str, Any], source: str, name: str) -> None:
    """``--replace`` overwrites a rerun of the same code only, and never a baseline shipped with benchbias."""
    where = f"{source}: methods.{new['method']}"
    if shipped(old):
        raise LeaderboardError(f"{where}: '{new['method']}' is a baseline shipped with benchbias; its {name} entry is not replaced (submit another version)")
    for key in ("distribution", "sha256"):
        if old["origin"].get(key) != new["origin"].get(key):
            raise LeaderboardError(
                f"{where}: origin.{key}: {new['origin'].get(key)!r} differs from the entry's {old['origin'].get(key)!r}; "
                "--replace takes a rerun of the same code only (submit it as another version)"
            )


def new_board(results: dict[str, Any]) -> dict[str, Any]:
    bench = results["benchmark"]
    return {
        "schema": LEADERBOARD_SCHEMA,
        "benchmark": bench["name"],
        "protocol_hash": bench["protocol_hash"],
        "dataset_fingerprint": results["dataset"]["fingerprint"],
        "judge_sha256": results["classifier"]["sha256"],
        "score_table": results["score_table"],
        "target_fractions": list(bench["config"]["domains"]["target_fractions"]),
        "ranking_rule": RANKING_RULE,
        "updated": now(),
        "entries": [],
    }


def check_before_run(benchmark: str, protocol_hash: str, folder: Path | None = None) -> Path:
    """What ``run --submit`` checks before computing anything: the leaderboard it will write to is a
    valid file of the same protocol (or not there yet), and its folder can be written; the path."""
    path = leaderboard_path(benchmark, folder)
    if path.is_file():
        board = load_leaderboard(path)
        if board["protocol_hash"] != protocol_hash:
            raise LeaderboardError(
                f"{path}: protocol_hash: {board['protocol_hash'][:12]} differs from this run's {protocol_hash[:12]}; "
                "its results could not be submitted (run the benchmark the leaderboard was made with)"
            )
    existing = next((p for p in (path.parent, *path.parent.parents) if p.exists()), None)
    if existing is not None and not (existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)):
        raise LeaderboardError(f"{path}: cannot be written ({existing} is {'not writable' if existing.is_dir() else 'a file'})")
    return path


def submit(
    results: dict[str, Any], source: str = "results", folder: Path | None = None, replace: bool = False, methods: tuple[str, ...] = ()
) -> tuple[Path, list[str]]:
    """Add the methods of validated ``results`` to their benchmark's leaderboard; return the path and
    what was done per method. A method already there at the same version is refused unless ``replace``."""
    name = results["benchmark"]["name"]
    path = leaderboard_path(name, folder)
    check_protocol(results, None, source)  # against the benchmark file: nothing is written when it fails
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(path):
        return _submit(results, source, path, name, replace, methods)


def add_verification(path: Path, method: str, version: str, record: dict[str, Any]) -> None:
    """Store the signed ``record`` (:mod:`benchbias.verification`) in the entry (``method``, ``version``)."""
    with locked(path):
        board = load_leaderboard(path)
        next(e for e in board["entries"] if e["method"] == method and e["version"] == version)["verification"] = record
        write(board, path)


def locked(path: Path) -> FileLock:
    """The lock of a leaderboard's read-modify-write: two writers at once must both land."""
    return FileLock(path.with_name(path.name + ".lock"), timeout=LOCK_TIMEOUT_S)


def _submit(results: dict[str, Any], source: str, path: Path, name: str, replace: bool, methods: tuple[str, ...]) -> tuple[Path, list[str]]:
    board = load_leaderboard(path) if path.is_file() else None
    check_protocol(results, board, source)
    board = board or new_board(results)
    chosen = list(methods) or list(results["methods"])
    unknown = [m for m in chosen if m not in results["methods"]]
    if unknown:
        raise LeaderboardError(f"{source}: methods: {', '.join(unknown)} not in the results (has: {', '.join(results['methods'])})")

    seeds = board_seeds(results, None if not board["entries"] else board, chosen)
    done = []
    for method in chosen:
        check_entry(results, board, source, method, seeds)
        new = entry(results, method)
        same = [i for i, e in enumerate(board["entries"]) if (e["method"], e["version"]) == (method, new["version"])]
        if same and not replace:
            raise LeaderboardError(
                f"{source}: methods.{method}: '{method}' version '{new['version']}' is already on the {name} leaderboard "
                "(submitted " + board["entries"][same[0]]["submitted"] + "); pass --replace to overwrite it"
            )
        for i in same:
            check_replace(board["entries"][i], new, source, name)
        board["entries"] = [e for i, e in enumerate(board["entries"]) if i not in same] + [new]
        board["score_table"] = ScoreTable.from_json(board["score_table"]).merged(ScoreTable.from_json(results["score_table"])).to_json()
        for role, record in results.get("extra_judges", {}).items():
            board.setdefault("extra_judges", {})[role] = record["sha256"]
        done.append(f"{'replaced' if same else 'added'} {method} ({new['version']})")
    board["entries"] = ranked(board)
    board["updated"] = now()
    write(board, path)
    return path, done


def write(board: dict[str, Any], path: Path) -> None:
    """Validate and render everything first, then replace the JSON, the Markdown and the figure,
    each through a temporary file: a failure leaves every file not yet renamed as it was."""
    from benchbias.leaderboard.figure import leaderboard_png  # matplotlib: only when writing

    check_leaderboard(board, f"{path} (about to be written)")
    check_signatures(board, path)
    text, markdown, figure = dumps(board), render(board), leaderboard_png(board["benchmark"], ranked(board))
    write_atomically(path, lambda h: h.write(text.encode()))
    write_atomically(path.with_suffix(".md"), lambda h: h.write(markdown.encode()))
    write_atomically(path.with_suffix(".png"), lambda h: h.write(figure))
