"""Every figure benchbias draws, as PNG bytes. Matplotlib through :class:`matplotlib.figure.Figure`
only (no pyplot, no global state).

* Figure 2 (:func:`draw_figure2`): one column per method; top row the healthy holdout sources,
  bottom row the tumor sources. Each target tumor fraction gets a stacked bar of the judge's calls on
  the translations (green: called healthy, red: called tumor; mean over seeds) and the mean absolute
  pixel error against the real target is the black line on the right-hand axis.
* Figure 3 (:func:`draw_figure3`): for the tumor example and the healthy example, rows are methods
  and columns are the source, the translation at every target fraction (first seed) and the real
  target, with the tumor outlined on the source and the real target.
* Hallucination maps (:func:`draw_hallucination_map`), one per method: for both examples, the
  translation and its signed difference to the real target at every fraction, with the segmentation
  judge's contours on the real target and on the translation.
* The leaderboard figure (:func:`leaderboard_png`): Figure 2 of every leaderboard entry, one row per
  entry in ranking order.
* The paper's claims (:func:`draw_paper_claims`): one panel per claim of :mod:`benchbias.paper_claims`.
"""
from __future__ import annotations

import io
import math
import sys
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from matplotlib import colormaps, colors, patheffects
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import PercentFormatter
from PIL import Image

DPI = 120
CALLED_HEALTHY = "#2e9e44"
CALLED_TUMOR = "#d62f2f"
MASK_CONTOUR = "#ff3030"
INPUT_ROWS = (("healthy_inputs", "healthy"), ("tumor_inputs", "tumor"))


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
    seeds = results.get("provenance", {}).get("seeds") or sorted(
        {cell["seed"] for method in results["methods"].values() for cell in method["cells"]}
    )
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
                ax.set_ylabel(f"{label} sources" + (f" (n = {n})" if n is not None else "") + "\nshare of translations")
            if row == 1:
                ax.set_xlabel("target tumor fraction (%)")
    if not methods:
        axes[0, 0].text(0.5, 0.5, "no methods in results", ha="center", va="center", transform=axes[0, 0].transAxes)
    seeds = seed_count(results)
    fig.suptitle(
        f"{plain(results['benchmark']['name'])}\nclassifier calls on translated holdout slices"
        + (f" (mean of {seeds} seeds)" if seeds > 1 else ""),
        fontsize=12,
    )
    fig.legend(
        handles=[
            Patch(color=CALLED_HEALTHY, label="called healthy"),
            Patch(color=CALLED_TUMOR, label="called tumor"),
            Line2D([], [], color="black", marker="o", markersize=4, label="pixel error (MAE, right axis)"),
        ],
        loc="outside lower center",
        ncols=3,
        frameon=False,
    )
    return fig


def error_axis_top(methods: Iterable[dict]) -> float:
    """One pixel-error scale for every panel, so the black lines compare across methods."""
    errors = [
        c["scores"].get(f"mae_{inputs}")
        for m in methods
        for c in m["cells"]
        for inputs, _ in INPUT_ROWS
    ]
    finite = [e for e in errors if e is not None and math.isfinite(e)]
    return 1.15 * max(finite) if finite and max(finite) > 0 else 1.0


def draw_calls_panel(ax, method: dict, inputs: str, ratios: list[float], mae_top: float, last_column: bool) -> None:
    positions = np.arange(len(ratios))
    tumor_share = mean_score_by_fraction(method, f"tumor_called_{inputs}", ratios)
    known = ~np.isnan(tumor_share)
    ax.bar(positions[known], 1 - tumor_share[known], width=0.8, color=CALLED_HEALTHY)
    ax.bar(positions[known], tumor_share[known], width=0.8, bottom=1 - tumor_share[known], color=CALLED_TUMOR)
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
        where = np.s_[top:top + self.height, left:left + self.width]
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
        block.colorbar(scale, ax=ax, shrink=0.45, anchor=(0.0, 0.1), location="right").ax.tick_params(labelsize=7)
    fig.suptitle(f"{plain(method)} ({training_kind(results['methods'][method])})\nwhere tumor is added or removed as the target tumor fraction grows (seed {seed})", fontsize=11)
    fig.legend(
        handles=[Line2D([], [], color=REAL_CONTOUR, label="judge's tumor outline on the real target"), Line2D([], [], color=TRANSLATED_CONTOUR, label="on the translation")],
        loc="outside lower center", ncols=2, frameon=False,
    )
    return fig


# ---- the paper's claims -------------------------------------------------------------------------

CLAIM_HOLDS = "#2e7d32"
CLAIM_FAILS = "#c62828"


def draw_paper_claims(claims: list[Any]) -> Figure:
    """The paper's four Figure 2 claims (:mod:`benchbias.paper_claims`), one panel each, from their
    measured figures: c1 CycleGAN's healthy-input tumor-called rate against r; c2 the three baselines'
    composition sensitivity; c3 L1's healthy-input rate with the allowed band; c4 L1's pixel error on
    tumor inputs against its threshold and its erasure with the allowed ceiling. Each panel's title says whether its claim holds, and by what numbers."""
    from benchbias import paper_claims as pc

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
            ax.axhspan(middle - pc.C3_MAX_SPREAD / 2, middle + pc.C3_MAX_SPREAD / 2, color=CLAIM_HOLDS, alpha=0.12, lw=0, label=f"allowed band ({pc.C3_MAX_SPREAD:g} wide)")
            ax.plot(x, y, color=colour, marker="o", label="per-fraction mean")
            ax.set_ylabel("L1: healthy inputs called tumor")
        else:
            ax.plot(x, y, color=colour, marker="o", label="erasure (per-fraction mean)")
            ax.plot([f["from_fraction"], x[-1]], [f["ceiling"]] * 2, color="black", lw=1.2, ls="--", label=f"ceiling: erasure at r = 1 + {pc.C4_MARGIN:g}")
            ax.set_ylabel("L1: erasure (tumor calls lost)")
            error = ax.twinx()
            error.plot(x, np.array(f["error"], dtype=float), color="0.25", marker="s", ms=4, lw=1, label="pixel error on tumor inputs")
            error.plot([x[0]], [pc.C4_MIN_ERROR_RATIO * f["error_elsewhere"]], marker="^", color="black", ls="none", label=f"{pc.C4_MIN_ERROR_RATIO:g}x the largest from r = {f['from_fraction']:g}")
            error.set_ylabel("L1: MAE on tumor inputs")
            error.set_ylim(0, 1.3 * max(f["error_at_zero"], pc.C4_MIN_ERROR_RATIO * f["error_elsewhere"]))
            error.legend(loc="center right", fontsize=8, framealpha=0.8)
        ax.legend(loc="best", fontsize=8, framealpha=0.8)
        ax.set_ylim(-0.03, 1.03)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlabel("tumor fraction of the training target (r)")
        ax.grid(alpha=0.3)
    return fig


def message_figure(message: str) -> Figure:
    fig = Figure(figsize=(6, 1.2))
    fig.text(0.5, 0.5, plain(message), ha="center", va="center", fontsize=11)
    return fig


def render_png(fig: Figure, dpi: int = DPI) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return buffer.getvalue()


# ---- the leaderboard figure --------------------------------------------------------------------

LEADERBOARD_DPI = 72  # the file is committed with the leaderboard: keep it small (and 64 colours, about 60 KB)
LEADERBOARD_COLUMNS = (
    ("tumor_called_healthy_inputs", "healthy inputs called tumor", True),
    ("tumor_called_tumor_inputs", "tumor inputs called tumor", True),
    ("mae", "mean absolute pixel error", False),
)


def _values(rows: list[dict[str, Any]], pick) -> np.ndarray:
    return np.array([np.nan if pick(r) is None else pick(r) for r in rows], dtype=float)


def leaderboard_png(board: dict[str, Any]) -> bytes:
    """``leaderboards/<benchmark>.png``: each seed a thin line, the mean over seeds a thick one, and the
    shaded band its 95% interval over seeds (when several ran)."""
    from benchbias.leaderboard import ranked

    entries = ranked(board)
    fig = Figure(figsize=(10, 0.5 + 1.9 * max(1, len(entries))), layout="constrained")
    fig.suptitle(plain(f"{board['benchmark']}: what each method calls tumor as the training target gets more tumors"), fontsize=11)
    axes = fig.subplots(max(1, len(entries)), len(LEADERBOARD_COLUMNS), squeeze=False, sharex=True)
    for row, entry in zip(axes, entries):
        rows = entry["per_fraction"]
        x = np.array([r["ratio"] for r in rows])
        for ax, (score, title, is_rate) in zip(row, LEADERBOARD_COLUMNS):
            for seed in entry["seeds"]:
                cells = sorted((c for c in entry["cells"] if c["seed"] == seed), key=lambda c: c["ratio"])
                ax.plot([c["ratio"] for c in cells], _values(cells, lambda c: c["scores"][score]), color="0.6", lw=0.7)
            low = _values(rows, lambda r: r["ci95"][score][0] if r["ci95"][score] else None)
            high = _values(rows, lambda r: r["ci95"][score][1] if r["ci95"][score] else None)
            if not np.isnan(low).all():
                ax.fill_between(x, low, high, color="#d62f2f" if is_rate else "#3a6ea5", alpha=0.18, lw=0)
            ax.plot(x, _values(rows, lambda r: r["mean"][score]), color="#d62f2f" if is_rate else "#3a6ea5", lw=2, marker="o", ms=3)
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
