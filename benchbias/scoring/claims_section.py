"""The paper's claims as results files and leaderboards carry them: which methods stand for the three
baselines, whether a benchmark carries the claims, the ``paper_claims`` section of a results file, and
what ``benchbias run`` prints of it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from benchbias.foundation.benchmark_files import find_benchmark, load_benchmark
from benchbias.foundation.config import ConfigError
from benchbias.foundation.scoretable import ScoreTable
from benchbias.scoring.claims import BASELINES, DEFINITION, PAPER, ClaimResult, evaluate, evaluate_per_seed, holding, summary_line


@dataclass(frozen=True)
class Baselines:
    """The baselines found in a results file or leaderboard: each one's cells by plugin name, the
    method (and version, on a leaderboard) standing for it, and the score table."""

    cells: dict[str, list[dict]]
    names: dict[str, str]
    table: ScoreTable

    @property
    def complete(self) -> bool:
        return all(name in self.cells for name in BASELINES)

    @property
    def seeds(self) -> list[int]:
        return sorted({c["seed"] for cells in self.cells.values() for c in cells})


def is_leaderboard(data: dict[str, Any]) -> bool:
    return "entries" in data and "methods" not in data


def baselines_of(data: dict[str, Any]) -> Baselines:
    """The three baselines of a results dict or a leaderboard dict, matched by plugin name. Where
    several methods run one plugin, the method named after it stands for it, else the first (on a
    leaderboard: the latest submitted)."""
    if is_leaderboard(data):
        candidates = [(e["method"], e.get("plugin", e["method"]), e) for e in sorted(data["entries"], key=lambda e: e.get("submitted", ""), reverse=True)]
    else:
        candidates = [(name, m.get("plugin", name), m) for name, m in data["methods"].items()]
    cells, names = {}, {}
    for plugin in BASELINES:
        mine = sorted((c for c in candidates if c[1] == plugin), key=lambda c: c[0] != plugin)  # stable: keeps the order above
        if mine:
            name, _, method = mine[0]
            cells[plugin] = method["cells"]
            names[plugin] = f"{name} ({method['version']})" if is_leaderboard(data) and "version" in method else name
    return Baselines(cells, names, ScoreTable.from_json(data["score_table"]))


def benchmark_carries_claims(name: str) -> bool:
    """Whether the benchmark file of that name (found as ``benchbias run`` finds it) says ``paper_claims: true``."""
    try:
        return load_benchmark(find_benchmark(name)).paper_claims
    except ConfigError:
        return False  # a benchmark known only by its leaderboard, or a file that no longer loads


def carries_claims(data: dict[str, Any]) -> bool:
    """Whether the benchmark of a results dict (its embedded configuration) or of a leaderboard (its
    benchmark file) carries the paper's claims."""
    if is_leaderboard(data):
        return benchmark_carries_claims(data["benchmark"])
    return bool(data["benchmark"].get("config", {}).get("paper_claims", False))


def claims_of(data: dict[str, Any]) -> list[ClaimResult]:
    """The claims on a results dict or a leaderboard dict, its seeds pooled."""
    found = baselines_of(data)
    return evaluate(found.cells, found.table)


def claims_per_seed_of(data: dict[str, Any]) -> dict[int, list[ClaimResult]]:
    found = baselines_of(data)
    return evaluate_per_seed(found.cells, found.table)


def section(data: dict[str, Any]) -> dict[str, Any] | None:
    """What a results file (or a leaderboard page) shows of the claims: the methods standing for the
    baselines, the claims pooled over seeds and per seed. None unless the benchmark carries the claims
    and all three baselines are there."""
    if not carries_claims(data):
        return None
    found = baselines_of(data)
    if not found.complete:
        return None
    pooled = evaluate(found.cells, found.table)
    return {
        "paper": PAPER,
        "definition": DEFINITION,
        "methods": found.names,
        "seeds": found.seeds,
        "holding": holding(pooled),
        "claims": [c.to_dict() for c in pooled],
        "per_seed": [{"seed": seed, "claims": [c.to_dict() for c in claims]} for seed, claims in evaluate_per_seed(found.cells, found.table).items()],
    }


def claims_in(claims_section: dict[str, Any]) -> list[ClaimResult]:
    return [ClaimResult.from_dict(c) for c in claims_section["claims"]]


def run_lines(results: dict[str, Any]) -> list[str]:
    """What ``benchbias run`` and ``selftest`` print of the claims: nothing when the benchmark does not
    carry them; a note when the run lacks a baseline; else the summary and one line per claim."""
    if not carries_claims(results):
        return []
    if results.get("paper_claims") is None:
        found = baselines_of(results)
        missing = [name for name in BASELINES if name not in found.cells]
        return [f"paper claims: not evaluated: needs {', '.join(BASELINES)} (missing: {', '.join(missing)})"]
    claims = claims_in(results["paper_claims"])
    return [summary_line(claims), *(f"  {c.detail}" for c in claims)]
