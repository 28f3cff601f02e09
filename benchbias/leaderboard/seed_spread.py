"""Tolerances of ``check`` derived from a reference's own seed spread, and what ``check`` compares
beyond the score table's checked scores.

A score that the score table gives no tolerance (the dependence of each class, the extra judges'
scores, each target fraction's hallucination and erasure) is checked against

    z(1 - 0.025 / m) * sqrt(2) * SD

where SD is the seed-to-seed standard deviation of that score pooled over every method of the
reference with two or more seeds (for a per-fraction rate: over the fractions of the method checked,
when the reference has several of its seeds, else over every method and fraction), so
sqrt(2) * SD is the standard deviation of the difference of two single-seed runs; m is how many values
are checked together as one family (all of a method's sweep scores checked this way; the fractions of
one per-fraction rate), so that a plain rerun at another seed fails a family of m checks about as often
as one score at 2.5%: for m = 1 the factor is 1.96 x sqrt(2), about the 2 x sqrt(2) x SD of the score
table's tolerances. A rerun on another kind of CPU differs from the reference as a rerun at another
seed does (measured: docs/results/synthetic-quick.md), so the same tolerances serve across machines.

A reference of one seed has no seed spread: its per-fraction rates then get the binomial SD of a
cell's rate, and its other sweep scores are shown but not checked ("n/a").

On one machine kind with one thread count and the same training code, a rerun of the reference's seeds is bit for bit the same
(docs: "Checking a method against a reference"), so there every tolerance is 0.

Only numpy and scipy: ``check`` runs without torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from scipy import stats

WORSE_SHARE = 0.025  # one-sided: a family of checks fails a plain rerun about this often
FRACTION_RATES = ("hallucination", "erasure")
AT_FRACTION = "_at_fraction"  # ``--tolerance hallucination_at_fraction=0.2`` sets the per-fraction rates' tolerance
# What a trained network's float rounding depends on beyond its inputs: the CPU, its instruction set,
# the threads, and the training code (``training_code``, recorded since the baselines' models trained
# as grouped convolutions; entries without it are never compared bit for bit).
MACHINE_KEYS = ("cpu_model", "cpu_capability", "torch_threads", "training_code")


def factor(m: int) -> float:
    """The tolerance in units of the seed SD for a family of ``m`` checks."""
    return float(stats.norm.ppf(1.0 - WORSE_SHARE / max(m, 1))) * math.sqrt(2.0)


def pooled_sd(groups: Iterable[Sequence[float | None]]) -> float | None:
    """The pooled within-group standard deviation: sqrt(sum (n_i - 1) s_i^2 / sum (n_i - 1)) over the
    groups of two or more values; None when there are none."""
    squares, dof = 0.0, 0
    for group in groups:
        v = np.array([x for x in group if x is not None], dtype=float)
        if len(v) >= 2:
            squares += float(((v - v.mean()) ** 2).sum())
            dof += len(v) - 1
    return math.sqrt(squares / dof) if dof else None


def sweep_sd(entries: Iterable[dict[str, Any]], name: str) -> float | None:
    """Seed SD of a sweep score, pooled over the entries' per-seed values."""
    return pooled_sd([row.get(name) for row in e["summary"]["per_seed"]] for e in entries)


COUNTS = {"hallucination": "n_healthy_inputs", "erasure": "n_tumor_inputs"}


def fraction_sd(entries: Iterable[dict[str, Any]], rate: str) -> float | None:
    """Seed SD of a per-fraction rate, pooled over the entries and their fractions. A reference of
    one seed has no seed spread: then the binomial SD of a cell's rate, sqrt(p (1 - p) / n), with p
    the rate over every cell and n its slices (None without slice counts)."""
    entries = list(entries)
    groups = []
    for e in entries:
        cells = e.get("cells", [])
        for ratio in sorted({c["ratio"] for c in cells}):
            groups.append([c["scores"].get(rate) for c in cells if c["ratio"] == ratio])
    seeds = pooled_sd(groups)
    if seeds is not None:
        return seeds
    pairs = [(c["scores"].get(rate), c["scores"].get(COUNTS.get(rate, ""))) for e in entries for c in e.get("cells", [])]
    pairs = [(p, n) for p, n in pairs if p is not None and n]
    if not pairs:
        return None
    n = float(np.mean([n for _, n in pairs]))
    p = min(max(float(np.mean([p for p, _ in pairs])), 1.0 / n), 1.0 - 1.0 / n)  # at least one slice either way
    return math.sqrt(p * (1.0 - p) / n)


def at_fraction(entry: dict[str, Any], rate: str, seeds: set[int] | None = None) -> dict[float, float | None]:
    """A rate's mean at each fraction over ``seeds`` (all seeds when None)."""
    out: dict[float, float | None] = {}
    cells = entry.get("cells", [])
    for ratio in sorted({c["ratio"] for c in cells}):
        v = [c["scores"].get(rate) for c in cells if c["ratio"] == ratio and (seeds is None or c["seed"] in seeds)]
        v = [x for x in v if x is not None]
        out[ratio] = float(np.mean(v)) if v else None
    return out


def spread_checked(table_sweep: Iterable[Any], checked: Iterable[str], ref: dict[str, Any], mine: dict[str, Any]) -> list[Any]:
    """The sweep scores both sides have, with a better direction, that the score table does not check:
    the dependence of each class, the worst fraction, the extra judges' scores."""
    done = set(checked)
    return [s for s in table_sweep if s.better != "neither" and s.name not in done and s.name in ref["summary"] and s.name in mine["summary"]]


def machine_of(entry: dict[str, Any]) -> dict[str, Any] | None:
    """The machine a results method or leaderboard entry ran on (``provenance.machine``), if recorded."""
    machine = entry.get("machine")
    return machine if isinstance(machine, dict) else None


def describe(machine: dict[str, Any] | None) -> str:
    if machine is None:
        return "not recorded"
    code = f", training code {machine['training_code']}" if machine.get("training_code") else ""
    return f"{machine.get('cpu_model', '?')} ({machine.get('cpu_capability', '?')}), {machine.get('torch_threads', '?')} threads{code}"


def same_machine(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """Both recorded, and the same CPU model, capability, thread count and training code: cells are bit
    for bit reproducible."""
    return a is not None and b is not None and all(a.get(k) == b.get(k) and a.get(k) is not None for k in MACHINE_KEYS)
