"""``check`` sees what a reviewer would: each fraction's hallucination and erasure, the dependence of
each class and the extra judges' scores, with tolerances from the reference's seed spread, and exactly
where the rerun ran on the reference's machine and thread count."""

import copy
from pathlib import Path

import numpy as np

from benchbias.scoring.summary import method_summary

ELEVEN = [i / 10 for i in range(11)]


def l1_like_cells(seed, paint=lambda r: 0.0, hidden=lambda r: 0.0, n=100):
    """One seed of an L1-like sweep drawn on ``n`` slices per class: little hallucination, erasure
    falling from 0.9 to 0.1. ``paint(r)``: the share of healthy outputs painted with a lesion both judges
    see; ``hidden(r)``: with a lesion only the second judge and the segmenter see."""
    rng = np.random.default_rng(seed)
    cells = []
    for r in ELEVEN:
        h = rng.binomial(n, 0.02 + 0.06 * r) / n
        e = rng.binomial(n, max(0.1, 0.9 - 1.6 * r)) / n
        h2 = rng.binomial(n, 0.02 + 0.05 * r) / n
        h, h2 = h + paint(r) * (1 - h), h2 + (paint(r) + hidden(r)) * (1 - h2)
        scores = {
            "tumor_called": 0.5,
            "tumor_called_healthy_inputs": h,
            "tumor_called_tumor_inputs": 1 - e,
            "hallucination": h,
            "erasure": e,
            "flip_rate": (h + e) / 2,
            "mae": 0.042 + rng.normal(0, 0.001),
            "n_healthy_inputs": n,
            "n_tumor_inputs": n,
            "hallucination_2": h2,
            "erasure_2": e,
            "flip_rate_2": (h2 + e) / 2,
            "area_added": max(0.0, 0.001 + rng.normal(0, 0.0005)) + 0.07 * (paint(r) + hidden(r)),
        }
        cells.append({"ratio": r, "seed": seed, "scores": scores})
    return cells


def scored_entry(cells, machine=None, name="r.json"):
    from benchbias.leaderboard.compare import Scored
    from benchbias.scoring.builtin import default_table

    table = default_table()
    entry = {"method": "l1", "version": "v", "cells": cells, "summary": method_summary(cells, table), **({"machine": machine} if machine else {})}
    return Scored(Path(name), "results", "b", "h" * 64, "d", "j" * 64, {"l1": [entry]}, table)


def test_check_catches_planted_hallucination_and_passes_another_seed():
    from benchbias.leaderboard.compare import check, parse_tolerances
    from benchbias.scoring.builtin import default_table

    defaults = parse_tolerances([], default_table())
    reference = scored_entry([c for seed in (0, 1, 2) for c in l1_like_cells(seed)])
    for seed in (3, 4, 5):  # plain L1 at other seeds
        plain = check(scored_entry(l1_like_cells(seed)), reference, defaults)
        assert plain.passed, (seed, plain.worse)
    # Lesions on 20% x r of healthy outputs: the rate at high r moves, and the sweep mean beyond its tolerance.
    visible = check(scored_entry(l1_like_cells(3, paint=lambda r: 0.2 * r)), reference, defaults)
    assert not visible.passed and {"l1 changed", "l1 hallucination at r = 1"} <= set(visible.worse), visible.worse
    # On 8% x r the sweep means stay within tolerance; the dependence on r does not.
    faint = check(scored_entry(l1_like_cells(3, paint=lambda r: 0.08 * r)), reference, defaults)
    assert not faint.passed and "l1 changed" not in faint.worse, "the sweep mean alone would let it through"
    assert "l1 dependence_hallucination" in faint.worse, faint.worse
    # 40% x r, hidden from the first judge: every first-judge score as plain L1's; the second judge and the segmenter see it.
    hidden = check(scored_entry(l1_like_cells(3, hidden=lambda r: 0.4 * r)), reference, defaults)
    assert not any(w.startswith("l1 hallucination at") for w in hidden.worse)
    assert {"l1 hallucination_2", "l1 area_added"} <= set(hidden.worse), hidden.worse
    tables = "\n".join("  ".join(row) for row in hidden.rows)
    assert "machines: reference not recorded; this run not recorded" in tables and "(seeds)" in tables


def test_check_is_exact_on_the_same_machine_and_threads():
    from benchbias.leaderboard.compare import check, parse_tolerances
    from benchbias.scoring.builtin import default_table

    defaults = parse_tolerances([], default_table())
    here = {"cpu_model": "Xeon", "cpu_capability": "AVX512", "torch_threads": 2, "training_code": "0123456789abcdef"}
    cells = [c for seed in (0, 1, 2) for c in l1_like_cells(seed)]
    reference = scored_entry(cells, here)
    assert check(scored_entry([c for c in cells if c["seed"] == 1], here), reference, defaults).passed, "a reproduction"
    nudged = copy.deepcopy([c for c in cells if c["seed"] == 1])
    nudged[-1]["scores"]["hallucination"] += 0.01  # one slice of 100 at r = 1
    nudged[-1]["scores"]["tumor_called_healthy_inputs"] += 0.01
    exact = check(scored_entry(nudged, here), reference, defaults)
    assert "l1 hallucination at r = 1" in exact.worse and "compared exactly" in exact.rows[1][1]
    elsewhere = check(scored_entry(nudged, {**here, "torch_threads": 8}), reference, defaults)
    assert elsewhere.passed and "8 threads" in elsewhere.rows[1][1], "another thread count: tolerances"
    # The same CPU and threads, but other training code (or none recorded): other roundings, so tolerances.
    for other in ({**here, "training_code": "fedcba9876543210"}, {k: v for k, v in here.items() if k != "training_code"}):
        assert check(scored_entry(nudged, other), reference, defaults).passed, other


def test_a_quiet_method_is_judged_by_its_own_spread_not_a_noisy_neighbour():
    """A per-fraction rate is compared with the checked method's own seed spread: a noisy method on
    the same board (a GAN whose rates swing by 0.3 between seeds) must not widen L1's tolerance until
    a lesion painted on 10% x r of L1's healthy outputs passes."""
    from benchbias.leaderboard.compare import check, parse_tolerances
    from benchbias.scoring.builtin import default_table

    defaults = parse_tolerances([], default_table())
    reference = scored_entry([c for seed in (0, 1, 2) for c in l1_like_cells(seed)])
    noisy = []
    for seed in (0, 1, 2):
        rng = np.random.default_rng(100 + seed)
        for cell in l1_like_cells(seed):
            swing = float(rng.uniform(0.0, 0.6))
            noisy.append({**cell, "scores": {**cell["scores"], "hallucination": swing, "tumor_called_healthy_inputs": swing}})
    gan = {"method": "gan", "version": "v", "cells": noisy, "summary": method_summary(noisy, reference.table)}
    reference.methods["gan"] = [gan]
    painted = check(scored_entry(l1_like_cells(3, paint=lambda r: 0.1 * r)), reference, defaults, methods=["l1"])
    assert "l1 hallucination at r = 1" in painted.worse, painted.worse
    assert check(scored_entry(l1_like_cells(4)), reference, defaults, methods=["l1"]).passed, "plain L1 at another seed"
