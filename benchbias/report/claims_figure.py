"""The paper's claims (:func:`draw_paper_claims`): one panel per claim of :mod:`benchbias.scoring.claims`."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from benchbias.report.figures import plain
from benchbias.scoring import claims as pc

# ---- the paper's claims -------------------------------------------------------------------------

CLAIM_HOLDS = "#2e7d32"
CLAIM_FAILS = "#c62828"


def draw_paper_claims(claims: list[Any]) -> Figure:
    """The paper's four Figure 2 claims (:mod:`benchbias.scoring.claims`), one panel each, from their
    measured figures: c1 CycleGAN's healthy-input tumor-called rate against r; c2 the three baselines'
    composition sensitivity; c3 L1's healthy-input rate with the allowed band; c4 L1's pixel error on tumor
    inputs against its threshold and its erasure with the allowed ceiling. Each panel's title says whether its claim holds, and by what numbers."""
    by_id = {c.id: c for c in claims}
    fig = Figure(figsize=(10, 7), layout="constrained")
    fig.suptitle("The paper's Figure 2 claims (seeds pooled)", fontsize=12)
    axes = fig.subplots(2, 2).flatten()
    for ax, claim in zip(axes, pc.CLAIMS):
        result = by_id.get(claim.id)
        colour = "gray" if result is None or not result.evaluated else (CLAIM_HOLDS if result.holds else CLAIM_FAILS)
        if result is None or not result.evaluated:
            ax.set_title(plain(f"{claim.id}: {claim.statement}\nnot evaluated"), fontsize=9.5, color=colour)
            why = result.measured.removeprefix("not evaluated: ") if result is not None else "not in the results"
            ax.text(0.5, 0.5, plain(why), ha="center", va="center", transform=ax.transAxes, color="gray", wrap=True, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        f = result.figures
        if claim.id == "c1":
            rho = "n/a" if f["spearman_rho"] is None else f"{f['spearman_rho']:.2f}"
            numbers = f"Spearman rho {rho} (needs >= {pc.C1_MIN_RHO:g}), rise {f['rise']:.2f} (needs >= {pc.C1_MIN_RISE:g})"
        elif claim.id == "c2":
            numbers = "CycleGAN's must be the largest"
        elif claim.id == "c3":
            numbers = f"max - min {f['spread']:.2f} (needs <= {pc.C3_MAX_SPREAD:g})"
        else:
            numbers = (
                f"error at r = 0 {f['error_ratio']:.2f}x the rest (>= {pc.C4_MIN_ERROR_RATIO:g}x); "
                f"erasure from r = {f['from_fraction']:g} at most {f['worst_from_fraction']:.2f} (<= {f['ceiling']:.2f})"
            )
        ax.set_title(plain(f"{claim.id}: {claim.statement}\n{result.verdict}: {numbers}"), fontsize=9.5, color=colour)
        if claim.id == "c2":
            names = list(f["sensitivity"])
            values = [f["sensitivity"][n] for n in names]
            ax.bar(names, values, color=[colour if n == "cyclegan" else "0.6" for n in names])
            for i, value in enumerate(values):
                ax.text(i, value, f"{value:.2f}", ha="center", va="bottom", fontsize=9)
            ax.set_ylabel("composition sensitivity")
            ax.set_ylim(0, max(1.0, 1.15 * max(values)))
            continue
        x = np.array(f["ratios"])
        y = np.array(f["erasure"] if claim.id == "c4" else f["rates"], dtype=float)
        if claim.id == "c1":
            ax.plot(x, y, color=colour, marker="o", label="per-fraction mean")
            ax.plot(x[:2], [f["lowest_two"]] * 2, color="0.3", lw=1, ls="--", label="means of the two lowest / highest r")
            ax.plot(x[-2:], [f["highest_two"]] * 2, color="0.3", lw=1, ls="--")
            ax.set_ylabel("CycleGAN: healthy inputs called tumor")
        elif claim.id == "c3":
            middle = (f["lowest"] + f["highest"]) / 2
            ax.axhspan(
                middle - pc.C3_MAX_SPREAD / 2,
                middle + pc.C3_MAX_SPREAD / 2,
                color=CLAIM_HOLDS,
                alpha=0.12,
                lw=0,
                label=f"allowed band ({pc.C3_MAX_SPREAD:g} wide)",
            )
            ax.plot(x, y, color=colour, marker="o", label="per-fraction mean")
            ax.set_ylabel("L1: healthy inputs called tumor")
        else:
            ax.plot(x, y, color=colour, marker="o", label="erasure (per-fraction mean)")
            ax.plot([f["from_fraction"], x[-1]], [f["ceiling"]] * 2, color="black", lw=1.2, ls="--", label=f"ceiling: erasure at r = 1 + {pc.C4_MARGIN:g}")
            ax.set_ylabel("L1: erasure (tumor calls lost)")
            error = ax.twinx()
            error.plot(x, np.array(f["error"], dtype=float), color="0.25", marker="s", ms=4, lw=1, label="pixel error on tumor inputs")
            threshold = pc.C4_MIN_ERROR_RATIO * f["error_elsewhere"]
            error.plot(
                [x[0]], [threshold], marker="^", color="black", ls="none", label=f"{pc.C4_MIN_ERROR_RATIO:g}x the largest from r = {f['from_fraction']:g}"
            )
            error.set_ylabel("L1: MAE on tumor inputs")
            error.set_ylim(0, 1.3 * max(f["error_at_zero"], threshold))
            error.legend(loc="center right", fontsize=8, framealpha=0.8)
        ax.legend(loc="best", fontsize=8, framealpha=0.8)
        ax.set_ylim(-0.03, 1.03)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlabel("tumor fraction of the training target (r)")
        ax.grid(alpha=0.3)
    return fig
