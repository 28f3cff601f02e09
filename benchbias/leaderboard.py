"""Leaderboards: ``leaderboards/<benchmark>.json`` is the record; ``<benchmark>.md`` and the figure
``<benchmark>.png`` are rendered from it.

One entry per (method, version). An entry carries everything needed to judge it without the run
folder: the plugin's distribution and version (or file and sha256), parameters, protocol hash,
dataset fingerprint, seeds, every cell's scores, per-fraction means, the summary with confidence
intervals over seeds, the classifier's accuracy, package versions, device, wall time and dates.
Both files are validated before they are written and rewritten atomically.
"""
from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock

from benchbias.config import ConfigError, find_benchmark, load_benchmark
from benchbias.errors import BenchbiasError
from benchbias.jsonio import dumps, write_atomically
from benchbias.schemas import LEADERBOARD_SCHEMA
from benchbias.summary import CONFIDENCE, RANKING_RULE, fmt, ranking_key
from benchbias.tables import SCORE_COLUMNS, markdown_table, verdict_rows
from benchbias.validation import check_leaderboard, load_leaderboard

LEADERBOARD_ENV = "BENCHBIAS_LEADERBOARDS"
LOCK_TIMEOUT_S = 120


class LeaderboardError(BenchbiasError, ValueError):
    """A submission does not fit the leaderboard; the message names the field."""


def leaderboard_dir() -> Path:
    """``$BENCHBIAS_LEADERBOARDS``, else the checkout's ``leaderboards/``, else ``./leaderboards``."""
    if os.environ.get(LEADERBOARD_ENV):
        return Path(os.environ[LEADERBOARD_ENV])
    checkout = Path(__file__).resolve().parents[1] / "leaderboards"
    return checkout if checkout.is_dir() else Path.cwd() / "leaderboards"


def leaderboard_path(benchmark: str, folder: Path | None = None) -> Path:
    """A leaderboard JSON path as given, or the named benchmark's file in :func:`leaderboard_dir`."""
    if benchmark.endswith(".json"):
        return Path(benchmark)
    return (folder or leaderboard_dir()) / f"{benchmark}.json"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def entry(results: dict[str, Any], method: str) -> dict[str, Any]:
    """The leaderboard entry of one method of a validated results file."""
    bench, prov, m = results["benchmark"], results["provenance"], results["methods"][method]
    c = results["classifier"]
    return {
        "method": method,
        **{k: m[k] for k in ("plugin", "version", "origin", "paired", "params", "steps", "cells", "per_fraction", "summary")},
        "benchmark": bench["name"],
        "protocol_hash": bench["protocol_hash"],
        "dataset_fingerprint": results["dataset"]["fingerprint"],
        "seeds": prov["seeds"],
        "classifier": {k: c[k] for k in ("name", "version", "origin", "holdout_accuracy", "holdout_sensitivity", "holdout_specificity", "sha256")},
        "packages": prov["packages"],
        "python": prov["python"],
        "platform": prov["platform"],
        "device": prov["device"],
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
    judge = results["classifier"]["sha256"]
    if judge != board["judge_sha256"]:
        raise LeaderboardError(
            f"{source}: classifier.sha256: judged by {judge[:12]}, the leaderboard's judge is {board['judge_sha256'][:12]} "
            f"({bench['name']}.json); scores from another judge are not comparable (use the benchmark's pinned judge)"
        )


def new_board(results: dict[str, Any]) -> dict[str, Any]:
    bench = results["benchmark"]
    return {
        "schema": LEADERBOARD_SCHEMA,
        "benchmark": bench["name"],
        "protocol_hash": bench["protocol_hash"],
        "dataset_fingerprint": results["dataset"]["fingerprint"],
        "judge_sha256": results["classifier"]["sha256"],
        "target_fractions": list(bench["config"]["domains"]["target_fractions"]),
        "ranking_rule": RANKING_RULE,
        "updated": now(),
        "entries": [],
    }


def submit(
    results: dict[str, Any], source: str = "results", folder: Path | None = None, replace: bool = False, methods: tuple[str, ...] = ()
) -> tuple[Path, list[str]]:
    """Add the methods of validated ``results`` to their benchmark's leaderboard; return the path and
    what was done per method. A method already there at the same version is refused unless ``replace``."""
    name = results["benchmark"]["name"]
    path = leaderboard_path(name, folder)
    check_protocol(results, None, source)  # against the benchmark file: nothing is written when it fails
    path.parent.mkdir(parents=True, exist_ok=True)
    # The whole read-modify-write under one lock: two submits at once must both land.
    with FileLock(path.with_name(path.name + ".lock"), timeout=LOCK_TIMEOUT_S):
        return _submit(results, source, path, name, replace, methods)


def _submit(results: dict[str, Any], source: str, path: Path, name: str, replace: bool, methods: tuple[str, ...]) -> tuple[Path, list[str]]:
    board = load_leaderboard(path) if path.is_file() else None
    check_protocol(results, board, source)
    board = board or new_board(results)
    chosen = list(methods) or list(results["methods"])
    unknown = [m for m in chosen if m not in results["methods"]]
    if unknown:
        raise LeaderboardError(f"{source}: methods: {', '.join(unknown)} not in the results (has: {', '.join(results['methods'])})")

    done = []
    for method in chosen:
        new = entry(results, method)
        same = [i for i, e in enumerate(board["entries"]) if (e["method"], e["version"]) == (method, new["version"])]
        if same and not replace:
            raise LeaderboardError(
                f"{source}: methods.{method}: '{method}' version '{new['version']}' is already on the {name} leaderboard "
                "(submitted " + board["entries"][same[0]]["submitted"] + "); pass --replace to overwrite it"
            )
        board["entries"] = [e for i, e in enumerate(board["entries"]) if i not in same] + [new]
        done.append(f"{'replaced' if same else 'added'} {method} ({new['version']})")
    board["entries"] = ranked(board)
    board["updated"] = now()
    write(board, path)
    return path, done


def write(board: dict[str, Any], path: Path) -> None:
    """Validate and render everything first, then replace the JSON, the Markdown and the figure,
    each through a temporary file: a failure leaves every file not yet renamed as it was."""
    from benchbias.leaderboard_figure import (
        leaderboard_png,  # matplotlib: only when writing
    )

    check_leaderboard(board, f"{path} (about to be written)")
    text, markdown, figure = dumps(board), render(board), leaderboard_png(board)
    write_atomically(path, lambda h: h.write(text.encode()))
    write_atomically(path.with_suffix(".md"), lambda h: h.write(markdown.encode()))
    write_atomically(path.with_suffix(".png"), lambda h: h.write(figure))


# ---- rendering ----------------------------------------------------------------------------


def ranked(board: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries in ranking order (the method name, then the version, break exact ties)."""
    return sorted(board["entries"], key=lambda e: (ranking_key(e["summary"]), e["method"], e["version"]))


def ranked_rows(board: dict[str, Any]) -> list[list[str]]:
    """Header plus one row per entry, in ranking order."""
    entries = ranked(board)
    extra_header = ["version", "seeds", "judge", "device", "submitted"]
    extra = [[e["version"], ",".join(map(str, e["seeds"])), e["classifier"]["sha256"][:12], e["device"], e["submitted"][:10]] for e in entries]
    return verdict_rows([(e["method"], e["summary"]) for e in entries], extra_header, extra)


def _fraction_rows(board: dict[str, Any], score: str, digits: int) -> list[list[str]]:
    fractions = board["target_fractions"]
    rows = [["method", *[f"{f:g}" for f in fractions]]]
    for e in ranked(board):
        by_ratio = {row["ratio"]: row["mean"][score] for row in e["per_fraction"]}
        rows.append([e["method"], *[fmt(by_ratio.get(f), digits) for f in fractions]])
    return rows


SEEDS_NOTE = (
    f"Scores pool all seeds of an entry; brackets: {CONFIDENCE:.0%} t-interval of its per-seed values "
    "(composition sensitivity, a maximum of two slopes, may sit off the interval's centre)."
)


def render(board: dict[str, Any]) -> str:
    """The Markdown page of a leaderboard."""
    seeds_note = (
        f"Each score pools all of an entry's seeds; brackets are {CONFIDENCE:.0%} t-intervals of its per-seed values "
        "(for composition sensitivity, a maximum of two slopes, the pooled value can sit off the interval's centre); "
        "an entry with one seed has none."
    )
    parts = [
        f"# Leaderboard: {board['benchmark']}",
        f"<!-- generated by benchbias from {board['benchmark']}.json; do not edit by hand -->",
        f"Protocol hash `{board['protocol_hash'][:16]}`, dataset fingerprint `{board['dataset_fingerprint'][:16]}`, "
        f"judge sha256 `{board['judge_sha256'][:16]}`, "
        f"target tumor fractions {', '.join(f'{f:g}' for f in board['target_fractions'])}. Updated {board['updated']}.",
        f"Ranking: {board['ranking_rule']}. {seeds_note}",
        markdown_table(ranked_rows(board), right={0, *SCORE_COLUMNS}),
        f"![Tumor-called rates and pixel error against the target tumor fraction, one row per entry]({board['benchmark']}.png)",
        "## Hallucination, by target tumor fraction",
        "Of the healthy holdout slices the judge calls healthy on their real T1, the share it calls tumor after translation.",
        markdown_table(_fraction_rows(board, "hallucination", 2), right=set(range(1, 20))),
        "## Erasure, by target tumor fraction",
        "Of the tumor holdout slices the judge calls tumor on their real T1, the share it calls healthy after translation.",
        markdown_table(_fraction_rows(board, "erasure", 2), right=set(range(1, 20))),
        "## Tumor-called rate on healthy inputs, by target tumor fraction (Figure 2, left)",
        markdown_table(_fraction_rows(board, "tumor_called_healthy_inputs", 2), right=set(range(1, 20))),
        "## Tumor-called rate on tumor inputs, by target tumor fraction (Figure 2, right)",
        markdown_table(_fraction_rows(board, "tumor_called_tumor_inputs", 2), right=set(range(1, 20))),
        "## Mean absolute pixel error, by target tumor fraction",
        markdown_table(_fraction_rows(board, "mae", 4), right=set(range(1, 20))),
        "## Entries",
    ]
    for e in ranked(board):
        o = e["origin"]
        where = f"{o['source']} `{o['location']}`" + (f", sha256 `{o['sha256'][:12]}`" if o["sha256"] else "")
        parts.append(
            f"- **{e['method']}** ({e['version']}; plugin `{e['plugin']}`, {'paired' if e['paired'] else 'unpaired'}, "
            f"{e['steps']} steps): {where}; params `{dumps(e['params']).strip().replace(chr(10), '').replace('  ', '')}`; "
            f"seeds {e['seeds']}; {e['compute_time_s']:.0f} s training and translating on {e['device']} (results assembled {e['run_started']} in {e['wall_time_s']:.0f} s wall, {e['cells_reused']} of {e['cells_run'] + e['cells_reused']} cells of the run reused from earlier runs); "
            f"benchbias {e['benchbias_version']} (commit {(e['git_commit'] or 'unknown')[:12]}), torch {e['packages'].get('torch', '?')}, "
            f"monai {e['packages'].get('monai', '?')}; judge {e['classifier']['name']} accuracy {fmt(e['classifier']['holdout_accuracy'])}."
        )
    return "\n\n".join(parts) + "\n"
