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


ELEVEN = [i / 10 for i in range(11)]
BUMP = [0.00, 0.11, 0.21, 0.32, 0.48, 0.64, 0.48, 0.35, 0.19, 0.11, 0.00]  # rises to r = 0.5 and falls back: slope 0


def sweep_cells(hallucination, erasure, n=100, seeds=(0,)):
    """Eleven fractions of cells with the given per-fraction rates and ``n`` slices of each class."""
    return [
        {
            "ratio": r,
            "seed": seed,
            "scores": {
                "tumor_called": 0.5,
                "tumor_called_healthy_inputs": h,
                "tumor_called_tumor_inputs": 1 - e,
                "hallucination": h,
                "erasure": e,
                "flip_rate": (h + e) / 2,
                "mae": 0.05,
                "n_healthy_inputs": n,
                "n_tumor_inputs": n,
            },
        }
        for seed in seeds
        for r, h, e in zip(ELEVEN, hallucination, erasure)
    ]


def test_a_bump_is_as_composition_sensitive_as_a_steady_rise():
    bump = method_summary(sweep_cells(BUMP, [0.05] * 11), TABLE)
    cyclegan_like = method_summary(sweep_cells([0.1 + 0.6 * r for r in ELEVEN], [0.3 - 0.25 * r for r in ELEVEN]), TABLE)
    assert abs(bump["hallucination_trend"]["slope"]) < 1e-12 and bump["sensitivity_slope"] < 1e-12, "a line sees nothing"
    assert bump["sensitivity"] >= cyclegan_like["sensitivity"] > 0.5
    assert bump["sensitivity"] == bump["dependence_hallucination"] and bump["dependence_erasure"] == 0.0
    assert bump["changed_worst"] == pytest.approx((0.64 + 0.05) / 2), "the worst fraction is r = 0.5"
    assert cyclegan_like["sensitivity_slope"] == pytest.approx(0.6)


def test_a_straight_line_without_noise_scores_its_slope():
    from benchbias.scoring.dependence import dependence

    assert dependence(ELEVEN, [0.2 + 0.5 * r for r in ELEVEN], [None] * 11) == pytest.approx(0.5)
    assert dependence(RATIOS, [0.9 - 0.8 * r for r in RATIOS], [None] * 5) == pytest.approx(0.8), "whatever the fractions"
    assert dependence([0.0, 1.0], [0.3, None], [10, 10]) is None, "one fraction: undefined"


def test_equal_rates_score_exactly_zero_and_binomial_noise_scores_zero():
    fixed = method_summary(sweep_cells([0.1] * 11, [0.3] * 11), TABLE)
    assert fixed["sensitivity"] == 0.0 and fixed["dependence_hallucination"] == 0.0 and fixed["dependence_erasure"] == 0.0
    # Calls drawn at one rate whatever the fraction (100 slices each, 20 sweeps): the spread is binomial noise.
    rng = np.random.default_rng(3)
    caught = []
    for _ in range(20):
        rates = [rng.binomial(100, 0.3) / 100 for _r in ELEVEN]
        caught.append(method_summary(sweep_cells(rates, [0.1] * 11), TABLE)["sensitivity"])
    assert np.median(caught) == 0.0 and max(caught) < 0.15, caught
    # The same spread on 3 slices per fraction would be a real effect on 3000.
    wobble = [0.3 + (0.05 if i % 2 else -0.05) for i in range(11)]
    assert method_summary(sweep_cells(wobble, [0.1] * 11, n=3), TABLE)["sensitivity"] == 0.0
    assert method_summary(sweep_cells(wobble, [0.1] * 11, n=3000), TABLE)["sensitivity"] > 0.1


def test_every_judge_counts_and_a_translation_unlike_the_target_is_flagged():
    def summary(changed, changed_2, mae=0.05, ssim=0.8, kappa=0.8, sensitivity=0.3):
        return {"changed": changed, "changed_2": changed_2, "sensitivity": sensitivity, "sensitivity_2": sensitivity, "mae": mae, "ssim": ssim, "kappa": kappa}

    summaries = {
        "l1": summary(0.19, 0.18),
        "cyclegan": summary(0.29, 0.28, mae=0.063, ssim=0.71, kappa=0.63),
        "condgan": summary(0.32, 0.29, mae=0.056, ssim=0.73, kappa=0.49),
        "attacked-on-judge-1": summary(0.05, 0.48, kappa=-0.06),  # pleases the first judge only
        "flair-copy": summary(0.05, 0.06, mae=0.105, ssim=0.67),  # the input, nudged: not a T1
        "second-judge-worse": summary(0.10, 0.25),
    }
    references = ["l1", "cyclegan", "condgan"]
    ranking = rank(summaries, references=references)
    assert [row["method"] for row in ranking] == ["l1", "second-judge-worse", "cyclegan", "condgan", "flair-copy", "attacked-on-judge-1"]
    why = {row["method"]: row["flags"] for row in ranking}
    assert why["flair-copy"] == ["MAE 0.105 above 1.5 x the baselines' median 0.056"]
    assert why["attacked-on-judge-1"] == ["judges' kappa -0.06 below 0.5 x the baselines' median 0.63"]
    assert not why["l1"] and not why["cyclegan"] and not why["second-judge-worse"]
    assert [row["method"] for row in rank(summaries)][:2] == ["flair-copy", "l1"], "without baselines: no bands, no flags"
