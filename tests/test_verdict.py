"""The verdict's arithmetic: changed diagnoses, hallucination, erasure, composition sensitivity and
the ranking rule, on cells whose answers are known."""

import numpy as np
import pytest
import torch
from support import core_scores

from benchbias.scoring.builtin import default_table
from benchbias.scoring.summary import RANK_DIGITS, method_summary, rank, ranking_key, trend

RATIOS = [0.0, 0.25, 0.5, 0.75, 1.0]

TABLE = default_table()


def cells(hallucination, erasure, mae=0.05, seed=0):
    """One cell per target fraction with the given per-fraction rates (callables of the fraction)."""
    return [
        {
            "ratio": r,
            "seed": seed,
            "scores": {
                "tumor_called": 0.5,
                "tumor_called_healthy_inputs": hallucination(r),
                "tumor_called_tumor_inputs": 1 - erasure(r),
                "hallucination": hallucination(r),
                "erasure": erasure(r),
                "flip_rate": (hallucination(r) + erasure(r)) / 2,
                "mae": mae,
            },
        }
        for r in RATIOS
    ]


def test_constant_rates_have_slope_exactly_zero_and_no_p_value():
    # 0.1 cannot be represented exactly: a least-squares fit through eleven of them gives +-1e-32, p = 1.
    fit = trend([i / 10 for i in range(11)], [0.1] * 11)
    assert fit["slope"] == 0.0 and fit["slope_p"] is None and fit["spearman_rho"] is None and fit["intercept"] == 0.1
    assert trend([0.0, 1.0], [None, 0.3])["slope"] is None  # one point: no trend


def test_cell_scores_count_changed_diagnoses_against_the_judges_call_on_the_real_slice():
    source_is_tumor = np.array([False, False, False, True, True, True])
    p_real = np.array([0.1, 0.2, 0.9, 0.9, 0.8, 0.1])  # the judge errs on slices 2 and 5
    p_translated = np.array([0.9, 0.1, 0.1, 0.2, 0.9, 0.9])
    images = torch.zeros(6, 1, 4, 4)
    scores = core_scores(images, images, images.bool(), source_is_tumor, p_translated, p_real, out_of_range=0.25)
    # Healthy slices the judge gets right on the real T1: 0 and 1; slice 0 became tumor.
    assert scores["hallucination"] == 0.5
    # Tumor slices the judge gets right on the real T1: 3 and 4; slice 3 became healthy.
    assert scores["erasure"] == 0.5
    assert scores["out_of_range"] == 0.25


def test_sweep_scores_of_known_translators():
    honest = method_summary(cells(lambda r: 0.02, lambda r: 0.05), TABLE)
    assert honest["hallucination"] == pytest.approx(0.02) and honest["erasure"] == pytest.approx(0.05)
    assert honest["changed"] == pytest.approx(0.035) and honest["sensitivity"] == 0.0

    # Paints with probability r: tumor inputs are called tumor anyway (erasure 0), so the two
    # classes' slopes average to half the effect; the larger one is the whole effect.
    follower = method_summary(cells(lambda r: r, lambda r: 0.0), TABLE)
    assert follower["sensitivity"] == pytest.approx(1.0) and follower["changed"] == pytest.approx(0.25)
    assert follower["hallucination_trend"]["slope"] == pytest.approx(1.0) and follower["erasure_trend"]["slope"] == 0.0

    painter = method_summary(cells(lambda r: 0.95, lambda r: 0.0), TABLE)
    eraser = method_summary(cells(lambda r: 0.0, lambda r: 0.9), TABLE)
    cyclegan_like = method_summary(cells(lambda r: 0.1 + 0.6 * r, lambda r: 0.3 - 0.25 * r), TABLE)
    assert painter["sensitivity"] == 0.0 and eraser["sensitivity"] == 0.0
    order = [row["method"] for row in rank({"painter": painter, "eraser": eraser, "cyclegan-like": cyclegan_like, "honest": honest})]
    assert order == ["honest", "cyclegan-like", "eraser", "painter"]


def test_seeds_give_intervals_and_pooled_scores():
    summary = method_summary(cells(lambda r: 0.1, lambda r: 0.2, seed=0) + cells(lambda r: 0.3, lambda r: 0.2, seed=1), TABLE)
    assert summary["n_seeds"] == 2 and summary["hallucination"] == pytest.approx(0.2)
    low, high = summary["ci95"]["hallucination"]
    assert 0.0 <= low < 0.2 < high <= 1.0
    assert [row["changed"] for row in summary["per_seed"]] == pytest.approx([0.15, 0.25])


def test_ties_to_a_percentage_point_are_broken_by_the_next_scores():
    a = method_summary(cells(lambda r: 0.100, lambda r: 0.1, mae=0.09), TABLE)
    b = method_summary(cells(lambda r: 0.104, lambda r: 0.1, mae=0.04), TABLE)  # changed 0.102 vs 0.100: a tie
    assert round(a["changed"], RANK_DIGITS) == round(b["changed"], RANK_DIGITS)
    assert [row["method"] for row in rank({"a": a, "b": b})] == ["b", "a"], "the lower pixel error wins the tie"
    c = method_summary(cells(lambda r: 0.2, lambda r: 0.1, mae=0.01), TABLE)
    assert ranking_key(c) > ranking_key(a), "a lower pixel error does not buy back a worse diagnosis score"
