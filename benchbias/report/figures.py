"""The figures of a run's report, as PNG bytes, and what every figure shares. Matplotlib through :class:`matplotlib.figure.Figure`
only (no pyplot, no global state).

* Figure 2 (:func:`draw_figure2`): one column per method; top row the healthy holdout sources,
  bottom row the tumor sources. Each target tumor fraction gets a stacked bar of the judge's calls on
  the translations, coloured by whether the call is right for the source slice in both rows (red,
  at the bottom: wrong, a healthy slice called tumor or a tumor slice called healthy; green: right;
  mean over seeds), and the mean absolute pixel error against the real target is the black line on
  the right-hand axis.
* Figure 3 (:func:`draw_figure3`): for the tumor example and the healthy example, rows are methods
  and columns are the source, the translation at every target fraction (first seed) and the real
  target, with the tumor outlined on the source and the real target.

Beside them: the hallucination maps (:mod:`benchbias.report.maps`), the paper's claims
(:mod:`benchbias.report.claims_figure`) and the leaderboard figure (:mod:`benchbias.leaderboard.figure`).
"""

from __future__ import annotations

import io
import math
import sys
import zipfile
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from matplotlib import colormaps, colors, patheffects
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import PercentFormatter

DPI = 120
RIGHT_CALL = "#2e9e44"
WRONG_CALL = "#d62f2f"
MASK_CONTOUR = "#ff3030"
INPUT_ROWS = (("healthy_inputs", "healthy"), ("tumor_inputs", "tumor"))
WRONG_CALLS = {"healthy_inputs": "called tumor", "tumor_inputs": "called healthy"}  # per source kind


# ---- reading the results ----------------------------------------------------------------------


def modalities(results: dict) -> tuple[str, str]:
    """The source and target modality names of the run (e.g. FLAIR, T1), from its embedded benchmark."""
    dataset = results["benchmark"].get("config", {}).get("dataset", {})
    return dataset.get("source", "flair").upper(), dataset.get("target", "t1").upper()


def fractions(results: dict) -> list[float]:
    """The target tumor fractions that were run, ascending."""
    ratios = {cell["ratio"] for method in results["methods"].values() for cell in method["cells"]}
    if not ratios:
        ratios = set(results["benchmark"].get("config", {}).get("domains", {}).get("target_fractions", []))
    return sorted(ratios)


def first_seed(results: dict) -> int | None:
    seeds = results.get("provenance", {}).get("seeds") or sorted({cell["seed"] for method in results["methods"].values() for cell in method["cells"]})
    return seeds[0] if seeds else None


def seed_count(results: dict) -> int:
    return len({cell["seed"] for method in results["methods"].values() for cell in method["cells"]})


def percent(ratio: float) -> str:
    return f"{100 * ratio:.0f}%" if float(100 * ratio).is_integer() else f"{100 * ratio:.1f}%"


def mean_or_nan(values: Iterable[float | None]) -> float:
    present = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(present)) if present else math.nan


def mean_score_by_fraction(method: dict, score: str, ratios: list[float]) -> np.ndarray:
    """Mean of one score over seeds at each fraction; NaN where every seed has null (or no cell)."""
    by_ratio: dict[float, list] = defaultdict(list)
    for cell in method["cells"]:
        by_ratio[cell["ratio"]].append(cell["scores"].get(score))
    return np.array([mean_or_nan(by_ratio.get(r, [])) for r in ratios])


def input_count(method: dict, inputs: str) -> int | None:
    counts = [c["scores"].get(f"n_{inputs}") for c in method["cells"] if c["scores"].get(f"n_{inputs}") is not None]
    return counts[0] if counts else None


def training_kind(method: dict) -> str:
    return "paired" if method.get("paired") else "unpaired"


def plain(text: str) -> str:
    """Text for matplotlib without mathtext: dollar signs are escaped."""
    return str(text).replace("$", r"\$")


# ---- figure 2: classifier calls and pixel error against the target tumor fraction ---------------


def draw_figure2(results: dict) -> Figure:
    methods = results["methods"]
    ratios = fractions(results)
    columns = max(1, len(methods))
    panel_width = 3.6 + 0.25 * max(0, len(ratios) - 6)
    fig = Figure(figsize=(max(7.0, 1.3 + panel_width * columns), 6.8), layout="constrained")
    axes = fig.subplots(2, columns, squeeze=False, sharex=True, sharey=True)
    mae_top = error_axis_top(methods.values())
    for column, (name, method) in enumerate(methods.items()):
        for row, (inputs, label) in enumerate(INPUT_ROWS):
            ax = axes[row, column]
            draw_calls_panel(ax, method, inputs, ratios, mae_top, last_column=column == columns - 1)
            if row == 0:
                ax.set_title(f"{plain(name)} ({training_kind(method)})", fontsize=12, fontweight="bold")
            if column == 0:
                n = input_count(method, inputs)
                ax.set_ylabel(f"{label} sources" + (f" (n = {n})" if n is not None else "") + f"\nred: {WRONG_CALLS[inputs]} (wrong)")
            if row == 1:
                ax.set_xlabel("target tumor fraction (%)")
    if not methods:
        axes[0, 0].text(0.5, 0.5, "no methods in results", ha="center", va="center", transform=axes[0, 0].transAxes)
    seeds = seed_count(results)
    fig.suptitle(
        f"{plain(results['benchmark']['name'])}\nclassifier calls on translated holdout slices" + (f" (mean of {seeds} seeds)" if seeds > 1 else ""),
        fontsize=12,
    )
    fig.legend(
        handles=[
            Patch(color=WRONG_CALL, label="wrong call (top: tumor added, bottom: tumor erased)"),
            Patch(color=RIGHT_CALL, label="right call"),
            Line2D([], [], color="black", marker="o", markersize=4, label="pixel error (MAE, right axis)"),
        ],
        loc="outside lower center",
        ncols=3,
        frameon=False,
    )
    return fig


def error_axis_top(methods: Iterable[dict]) -> float:
    """One pixel-error scale for every panel, so the black lines compare across methods."""
    errors = [c["scores"].get(f"mae_{inputs}") for m in methods for c in m["cells"] for inputs, _ in INPUT_ROWS]
    finite = [e for e in errors if e is not None and math.isfinite(e)]
    return 1.15 * max(finite) if finite and max(finite) > 0 else 1.0


def draw_calls_panel(ax, method: dict, inputs: str, ratios: list[float], mae_top: float, last_column: bool) -> None:
    positions = np.arange(len(ratios))
    tumor_share = mean_score_by_fraction(method, f"tumor_called_{inputs}", ratios)
    # The same colour means the same in both rows: red is a wrong call, drawn from the bottom so that
    # its height reads as the error rate.
    wrong = tumor_share if inputs == "healthy_inputs" else 1 - tumor_share
    known = ~np.isnan(wrong)
    ax.bar(positions[known], wrong[known], width=0.8, color=WRONG_CALL)
    ax.bar(positions[known], 1 - wrong[known], width=0.8, bottom=wrong[known], color=RIGHT_CALL)
    if not known.any():
        ax.text(0.5, 0.5, "no classifier calls", ha="center", va="center", transform=ax.transAxes, color="gray")
    else:
        for position in positions[~known]:
            ax.text(position, 0.5, "n/a", ha="center", va="center", rotation=90, color="gray", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_xlim(-0.6, len(ratios) - 0.4)
    ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_xticks(positions, [f"{100 * r:g}" for r in ratios])

    error = ax.twinx()
    mae = mean_score_by_fraction(method, f"mae_{inputs}", ratios)
    halo = [patheffects.withStroke(linewidth=4, foreground="white")]
    error.plot(positions, mae, color="black", marker="o", markersize=4, linewidth=1.8, path_effects=halo)
    error.set_ylim(0, mae_top)
    if last_column:
        error.set_ylabel("mean abs. pixel error")
    else:
        error.tick_params(labelright=False)


# ---- figure 3: example translations ------------------------------------------------------------


def read_npz(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of an ``.npz`` file benchbias wrote; None (drawn as a gap) when it is missing or unreadable."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        print(f"benchbias: warning: {path}: cannot be read ({type(exc).__name__}); drawn as a gap", file=sys.stderr)
        return None


def load_examples(out_dir: Path) -> dict[str, np.ndarray] | None:
    arrays = read_npz(out_dir / "examples.npz")
    return arrays if arrays and {"source", "target", "tumor_mask", "is_tumor"} <= set(arrays) else None


def load_judged(out_dir: Path, method: str, ratio: float, seed: int | None) -> dict[str, np.ndarray] | None:
    """A cell's ``judged.npz``: its example translations, and the segmentation judge's outlines of them."""
    if seed is None:
        return None
    arrays = read_npz(out_dir / "cells" / method / f"r{ratio:.3f}-s{seed}" / "judged.npz")
    return arrays if arrays and "example_translated" in arrays else None


def load_translations(out_dir: Path, method: str, ratio: float, seed: int | None) -> np.ndarray | None:
    arrays = load_judged(out_dir, method, ratio, seed)
    return None if arrays is None else arrays["example_translated"].astype(np.float32)


class PanelGrid:
    """Equal-sized image panels drawn as one picture on one axes, with titles, row labels and
    contours placed in its pixel coordinates.

    One artist instead of an axes per panel: a hallucination map has 48 panels, and as separate axes
    they took about 2.5 s to lay out and render, which every run paid at its end."""

    GAP = "#ffffff"
    NOT_RUN = "#eeeeee"

    def __init__(self, ax, rows: int, columns: int, shape: tuple[int, int], wide_after: tuple[int, ...] = (), row_gap: float = 0.0) -> None:
        self.ax = ax
        self.height, self.width = shape
        gap, wide = 1, max(2, round(0.35 * self.width))  # a wide gap leaves room for row labels
        self.x = np.cumsum([0] + [self.width + (wide if c in wide_after else gap) for c in range(columns - 1)])
        self.y = np.cumsum([0] + [self.height + max(gap, round(row_gap * self.height)) for _ in range(rows - 1)])
        self.picture = np.ones((self.y[-1] + self.height, self.x[-1] + self.width, 3), np.float32)

    def put(self, row: int, column: int, image: np.ndarray | None, cmap: str = "gray", vmin: float = 0.0, vmax: float = 1.0) -> None:
        """Place ``image`` (2-D, coloured with ``cmap`` over [vmin, vmax]); None is a gray "not run" panel."""
        top, left = self.y[row], self.x[column]
        where = np.s_[top : top + self.height, left : left + self.width]
        if image is None:
            self.picture[where] = colors.to_rgb(self.NOT_RUN)
            self.ax.text(left + self.width / 2 - 0.5, top + self.height / 2 - 0.5, "not run", ha="center", va="center", color="gray", fontsize=8)
            return
        scaled = (np.asarray(image, np.float32) - vmin) / (vmax - vmin)
        self.picture[where] = colormaps[cmap](np.clip(scaled, 0.0, 1.0))[..., :3]

    def contour(self, row: int, column: int, mask: np.ndarray | None, colour: str) -> None:
        if mask is not None and mask.any():
            xs, ys = self.x[column] + np.arange(self.width), self.y[row] + np.arange(self.height)
            self.ax.contour(xs, ys, mask.astype(np.float32), levels=[0.5], colors=colour, linewidths=0.9)

    def title(self, row: int, column: int, text: str, fontsize: float = 8) -> None:
        self.ax.text(self.x[column] + self.width / 2 - 0.5, self.y[row] - 1.5, text, ha="center", va="bottom", fontsize=fontsize)

    def row_label(self, row: int, column: int, text: str, fontsize: float = 8) -> None:
        """A vertical label just left of panel (row, column)."""
        self.ax.text(self.x[column] - 1.5, self.y[row] + self.height / 2 - 0.5, text, ha="right", va="center", rotation=90, fontsize=fontsize)

    def draw(self) -> None:
        self.ax.imshow(self.picture, interpolation="nearest")
        self.ax.set_xlim(-0.5, self.picture.shape[1] - 0.5)
        self.ax.set_ylim(self.picture.shape[0] - 0.5, -0.5)
        self.ax.set_axis_off()


def draw_figure3(results: dict, out_dir: Path) -> Figure:
    examples = load_examples(out_dir)
    if examples is None or not results["methods"]:
        return message_figure("No example slices in this results folder (examples.npz is missing).")
    ratios = fractions(results)
    seed = first_seed(results)
    names = list(results["methods"])
    translations = {(name, r): load_translations(out_dir, name, r, seed) for name in names for r in ratios}
    # Tumor example first (the paper's Figure 3a), then the healthy one (3b).
    order = sorted(range(len(examples["is_tumor"])), key=lambda i: not examples["is_tumor"][i])
    columns = len(ratios) + 2
    panel = 1.05
    rows, width = examples["source"].shape[-2:]
    tall = min(max(rows / width, 0.25), 4.0)  # slices need not be square: panels keep their aspect
    fig = Figure(figsize=(max(6.0, 1.6 + panel * columns), len(order) * (0.75 + panel * tall * len(names)) + 0.6), layout="constrained")
    blocks = fig.subfigures(len(order), 1, squeeze=False)[:, 0]
    for letter, (block, index) in zip("abcdefgh", zip(blocks, order)):
        title = "a holdout slice with a tumor" if examples["is_tumor"][index] else "a healthy holdout slice"
        block.suptitle(f"({letter}) {title}", fontsize=12, x=0.01, ha="left")
        draw_example_block(block, results, examples, index, ratios, translations)
    fig.suptitle(f"{plain(results['benchmark']['name'])}\ntranslations as the target tumor fraction grows (seed {seed})", fontsize=12)
    return fig


def draw_example_block(block, results: dict, examples: dict, index: int, ratios: list[float], translations: dict) -> None:
    """Rows are methods; columns the source, the translation at every fraction, the real target."""
    names = list(results["methods"])
    mask = examples["tumor_mask"][index]
    source, target = modalities(results)
    grid = PanelGrid(block.subplots(), len(names), len(ratios) + 2, examples["source"].shape[-2:])
    headers = [f"{source}\n(source)"] + [percent(r) for r in ratios] + [f"{target}\n(target)"]
    for column, header in enumerate(headers):
        grid.title(0, column, header, fontsize=9)
    for row, name in enumerate(names):
        images = [examples["source"][index]]
        images += [None if translations[(name, r)] is None else translations[(name, r)][index] for r in ratios]
        images += [examples["target"][index]]
        for column, image in enumerate(images):
            grid.put(row, column, image)
        for column in (0, len(images) - 1):
            grid.contour(row, column, mask, MASK_CONTOUR)
        grid.row_label(row, 0, f"{plain(name)}\n({training_kind(results['methods'][name])})", fontsize=9)
    grid.draw()


def message_figure(message: str) -> Figure:
    fig = Figure(figsize=(6, 1.2))
    fig.text(0.5, 0.5, plain(message), ha="center", va="center", fontsize=11)
    return fig


def render_png(fig: Figure, dpi: int = DPI) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return buffer.getvalue()
