"""Hallucination maps (:func:`draw_hallucination_map`), one per method: for both examples, the
translation and its signed difference to the real target at every fraction, with the segmentation
judge's contours on the real target and on the translation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from benchbias.report.figures import PanelGrid, first_seed, fractions, load_examples, load_judged, message_figure, modalities, percent, plain, training_kind

# ---- hallucination maps: where a method adds or removes tumor -----------------------------------

REAL_CONTOUR = "#1fbf3f"  # the segmentation judge's outline on the real target
TRANSLATED_CONTOUR = "#e020e0"  # ... and on the translation
DIFFERENCE_RANGE = 0.5  # the signed difference's colour scale: +-0.5 on the [0, 1] slice scale
DIFFERENCE_CMAP = "RdBu_r"


def has_segmentations(out_dir: Path) -> bool:
    """Whether the run had a segmentation judge (its outlines of the real examples were saved)."""
    examples = load_examples(Path(out_dir))
    return examples is not None and "segmented" in examples


def draw_hallucination_map(results: dict, out_dir: Path, method: str) -> Figure:
    """For a method: per example slice, the source and real target, then per target fraction the
    translation (first seed) above its signed difference to the real target, each with the
    segmentation judge's contours (green: on the real target; magenta: on the translation)."""
    examples = load_examples(Path(out_dir))
    if examples is None or "segmented" not in examples:
        return message_figure("No segmentation judge outlines in this results folder.")
    ratios, seed = fractions(results), first_seed(results)
    judged = {r: load_judged(Path(out_dir), method, r, seed) for r in ratios}
    source_name, target_name = modalities(results)
    order = sorted(range(len(examples["is_tumor"])), key=lambda i: not examples["is_tumor"][i])
    rows, width = examples["source"].shape[-2:]
    tall = min(max(rows / width, 0.25), 4.0)
    columns = len(ratios) + 1
    fig = Figure(figsize=(max(6.0, 1.2 + 1.0 * columns), len(order) * (0.6 + 2.0 * tall) + 0.9), layout="constrained")
    blocks = fig.subfigures(len(order), 1, squeeze=False)[:, 0]
    scale = ScalarMappable(Normalize(-DIFFERENCE_RANGE, DIFFERENCE_RANGE), DIFFERENCE_CMAP)
    for letter, (block, index) in zip("abcdefgh", zip(blocks, order)):
        title = "a holdout slice with a tumor" if examples["is_tumor"][index] else "a healthy holdout slice"
        block.suptitle(f"({letter}) {title}", fontsize=11, x=0.01, ha="left")
        ax = block.subplots()
        grid = PanelGrid(ax, 2, columns, (rows, width), wide_after=(0,), row_gap=0.3)
        real, real_outline = examples["target"][index].astype(np.float32), examples["segmented"][index]
        grid.put(0, 0, examples["source"][index])
        grid.title(0, 0, f"{source_name}\n(source)")
        grid.put(1, 0, real)
        grid.contour(1, 0, real_outline, REAL_CONTOUR)
        grid.title(1, 0, f"real {target_name}")
        grid.row_label(0, 1, "translation")
        grid.row_label(1, 1, f"minus real {target_name}")
        for column, ratio in enumerate(ratios, start=1):
            cell = judged[ratio]
            grid.title(0, column, percent(ratio))
            position = None if cell is None else int(np.flatnonzero(cell["example_index"] == examples["holdout_index"][index])[0])
            if position is None:
                grid.put(0, column, None)
                grid.put(1, column, None)
                continue
            translated = cell["example_translated"][position].astype(np.float32)
            grid.put(0, column, translated)
            grid.put(1, column, translated - real, DIFFERENCE_CMAP, -DIFFERENCE_RANGE, DIFFERENCE_RANGE)
            grid.contour(1, column, real_outline, REAL_CONTOUR)
            segmented = cell.get("example_segmented")
            grid.contour(0, column, None if segmented is None else segmented[position], TRANSLATED_CONTOUR)
            grid.contour(1, column, None if segmented is None else segmented[position], TRANSLATED_CONTOUR)
        grid.draw()
        bar = block.colorbar(scale, ax=ax, shrink=0.45, anchor=(0.0, 0.1), location="right")
        bar.set_label(f"translation minus real {target_name}\n(slice scale 0-1; red: brighter)", fontsize=7)
        bar.ax.tick_params(labelsize=7)
    fig.suptitle(
        f"{plain(method)} ({training_kind(results['methods'][method])})\nwhere tumor is added or removed as the target tumor fraction grows (seed {seed})",
        fontsize=11,
    )
    fig.legend(
        handles=[
            Line2D([], [], color=REAL_CONTOUR, label="judge's tumor outline on the real target"),
            Line2D([], [], color=TRANSLATED_CONTOUR, label="on the translation"),
        ],
        loc="outside lower center",
        ncols=2,
        frameon=False,
    )
    return fig
