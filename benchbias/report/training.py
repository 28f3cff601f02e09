"""The training figure of a method (:func:`draw_loss_curves`): every loss term it reported, one panel
each, one line per cell coloured by the cell's target tumor fraction. A loss that did not fall, or
that exploded, is the first thing to look at when a method's pixel error is far off."""

from __future__ import annotations

import math

from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from benchbias.report.figures import message_figure, plain, training_kind

COLUMNS = 5  # panels per row
CMAP = "viridis"


def has_loss_curves(method: dict) -> bool:
    return any(cell.get("loss_curve") for cell in method["cells"])


def loss_summary(method: dict) -> str | None:
    """'training losses, first -> last stretch of the steps (mean over 3 cells): l1 0.31 -> 0.082', for a
    terminal or a log file; None when the cells hold no loss curves."""
    cells = [cell["loss_curve"] for cell in method["cells"] if cell.get("loss_curve")]
    if not cells:
        return None
    parts = []
    for term in dict.fromkeys(term for curve in cells for term in curve["terms"]):
        ends = [(values[0], values[-1]) for values in (curve["terms"].get(term) or [None] for curve in cells)]
        first = [a for a, _ in ends if a is not None]
        last = [b for _, b in ends if b is not None]
        mean = lambda values: f"{sum(values) / len(values):.3g}" if values else "n/a"  # noqa: E731
        parts.append(f"{term} {mean(first)} -> {mean(last)}")
    return f"training losses, first -> last stretch of the steps (mean over {len(cells)} cells): " + ", ".join(parts)


def draw_loss_curves(results: dict, name: str) -> Figure:
    method = results["methods"][name]
    cells = [cell for cell in method["cells"] if cell.get("loss_curve")]
    if not cells:
        return message_figure(f"{name}: no loss curves in these cells (computed by an earlier benchbias, or the translator reported none).")
    terms = list(dict.fromkeys(term for cell in cells for term in cell["loss_curve"]["terms"]))
    columns = min(COLUMNS, len(terms))
    rows = math.ceil(len(terms) / columns)
    fig = Figure(figsize=(1.0 + 2.3 * columns, 0.7 + 1.75 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False)
    scale = ScalarMappable(Normalize(0.0, 1.0), CMAP)
    seeds = sorted({cell["seed"] for cell in cells})
    styles = ["-", "--", ":", "-."]
    for i, term in enumerate(terms):
        ax = axes[i // columns, i % columns]
        for cell in cells:
            curve = cell["loss_curve"]
            values = [math.nan if v is None else v for v in curve["terms"].get(term, [])]
            if values:
                style = styles[seeds.index(cell["seed"]) % len(styles)]
                ax.plot(curve["steps"][: len(values)], values, style, color=scale.to_rgba(cell["ratio"]), linewidth=1.2)
        ax.set_title(plain(term), fontsize=10)
        ax.tick_params(labelsize=8)
        if i // columns == rows - 1:
            ax.set_xlabel("training step", fontsize=9)
        if i % columns == 0:
            ax.set_ylabel("loss (mean per stretch)", fontsize=9)
    for j in range(len(terms), rows * columns):
        axes[j // columns, j % columns].set_axis_off()
    bar = fig.colorbar(scale, ax=axes, shrink=0.8)
    bar.set_label("target tumor fraction", fontsize=9)
    bar.ax.tick_params(labelsize=8)
    seed_note = f"; line style: seed ({', '.join(map(str, seeds))})" if len(seeds) > 1 else f" (seed {seeds[0]})"
    fig.suptitle(f"{plain(name)} ({training_kind(method)}): training losses, one line per cell{seed_note}", fontsize=10)
    return fig
