"""The leaderboard figure (:func:`leaderboard_png`): Figure 2 of every leaderboard entry, one row per
entry in ranking order."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter
from PIL import Image

from benchbias.report.figures import plain, render_png

# ---- the leaderboard figure --------------------------------------------------------------------

LEADERBOARD_DPI = 72  # the file is committed with the leaderboard: keep it small (and 64 colours, about 60 KB)
LEADERBOARD_COLUMNS = (
    ("tumor_called_healthy_inputs", "healthy inputs called tumor", True),
    ("tumor_called_tumor_inputs", "tumor inputs called tumor", True),
    ("mae", "mean absolute pixel error", False),
)


def _values(rows: list[dict[str, Any]], pick) -> np.ndarray:
    return np.array([np.nan if pick(r) is None else pick(r) for r in rows], dtype=float)


def leaderboard_png(benchmark: str, entries: list[dict[str, Any]]) -> bytes:
    """``leaderboards/<benchmark>.png`` of the ``entries`` in ranking order: each seed a thin line, the
    mean over seeds a thick one, and the shaded band its 95% interval over seeds (when several ran)."""
    fig = Figure(figsize=(10, 0.5 + 1.9 * max(1, len(entries))), layout="constrained")
    fig.suptitle(plain(f"{benchmark}: what each method calls tumor as the training target gets more tumors"), fontsize=11)
    axes = fig.subplots(max(1, len(entries)), len(LEADERBOARD_COLUMNS), squeeze=False, sharex=True)
    for row, entry in zip(axes, entries):
        rows = entry["per_fraction"]
        x = np.array([r["ratio"] for r in rows])
        for ax, (score, title, is_rate) in zip(row, LEADERBOARD_COLUMNS):
            for seed in entry["seeds"]:
                cells = sorted((c for c in entry["cells"] if c["seed"] == seed), key=lambda c: c["ratio"])
                ax.plot([c["ratio"] for c in cells], _values(cells, lambda c, score=score: c["scores"][score]), color="0.6", lw=0.7)
            low = _values(rows, lambda r, score=score: r["ci95"][score][0] if r["ci95"][score] else None)
            high = _values(rows, lambda r, score=score: r["ci95"][score][1] if r["ci95"][score] else None)
            if not np.isnan(low).all():
                ax.fill_between(x, low, high, color="#d62f2f" if is_rate else "#3a6ea5", alpha=0.18, lw=0)
            ax.plot(x, _values(rows, lambda r, score=score: r["mean"][score]), color="#d62f2f" if is_rate else "#3a6ea5", lw=2, marker="o", ms=3)
            if is_rate:
                ax.set_ylim(-0.03, 1.03)
                ax.yaxis.set_major_formatter(PercentFormatter(1.0))
            ax.grid(alpha=0.3)
            ax.set_title(plain(f"{entry['method']}: {title}" if score == LEADERBOARD_COLUMNS[0][0] else title), fontsize=9)
        row[0].set_ylabel(plain(f"{entry['method']}\n{len(entry['seeds'])} seed(s)"), fontsize=9)
    for ax in axes[-1]:
        ax.set_xlabel("tumor fraction of the training target domain", fontsize=8)
    small = io.BytesIO()
    Image.open(io.BytesIO(render_png(fig, dpi=LEADERBOARD_DPI))).convert("RGB").quantize(colors=64).save(small, format="PNG", optimize=True)
    return small.getvalue()
