"""A run's report, written beside ``results.json``.

* ``figure2.png``: the paper's Figure 2. One column per method; top row the healthy holdout sources,
  bottom row the tumor sources. Each target tumor fraction gets a stacked bar of the classifier's calls
  on the translations (green: called healthy, red: called tumor; mean over seeds) and the mean absolute
  pixel error against the real target is the black line on the right-hand axis.
* ``figure3.png``: the paper's Figure 3 / S1. For the tumor example and the healthy example, rows are
  methods and columns are the FLAIR source, the translation at every target fraction (first seed) and
  the real T1, with the tumor outlined on the source and the real target.
* ``report.html``: self-contained (figures embedded as data URIs, inline CSS, no scripts): leaderboard,
  ranking rule, classifier quality, both figures, per-method tables and provenance.

Matplotlib is used through :class:`matplotlib.figure.Figure` only (no pyplot, no global state).
"""
from __future__ import annotations

import base64
import html
import io
import math
import sys
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from matplotlib import patheffects
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import PercentFormatter

from benchbias.jsonio import dumps, read_json, replace_together
from benchbias.results import ranked_table, ratio_table
from benchbias.summary import fmt

FIGURE2 = "figure2.png"
FIGURE3 = "figure3.png"
REPORT = "report.html"
DPI = 120
CALLED_HEALTHY = "#2e9e44"
CALLED_TUMOR = "#d62f2f"
MASK_CONTOUR = "#ff3030"
INPUT_ROWS = (("healthy_inputs", "healthy"), ("tumor_inputs", "tumor"))


def write_report(out_dir: Path, results: dict | None = None, with_results: bool = False) -> dict[str, Path]:
    """Write figure2.png, figure3.png and report.html into ``out_dir``; return their paths.

    ``results`` defaults to ``out_dir/results.json``; ``with_results`` writes it too, as
    ``results.json``. All of them are rendered and written to temporary files before any is
    renamed into place, so a failure (a full disk, a bad example file) leaves the old set, which agrees.
    Example images are read from ``out_dir`` (``examples.npz`` and
    ``cells/<method>/r<ratio>-s<seed>/examples.npz``); missing or unreadable ones are drawn as gaps.
    """
    out_dir = Path(out_dir)
    if results is None:
        results = read_json(out_dir / "results.json")
    figure2_png = render_png(draw_figure2(results))
    figure3_png = render_png(draw_figure3(results, out_dir))
    page = report_html(results, {FIGURE2: figure2_png, FIGURE3: figure3_png})
    contents = {"figure2": (FIGURE2, figure2_png), "figure3": (FIGURE3, figure3_png), "html": (REPORT, page.encode())}
    if with_results:
        contents["results"] = ("results.json", dumps(results).encode())
    paths = {key: out_dir / file_name for key, (file_name, _) in contents.items()}
    replace_together({paths[key]: content for key, (_, content) in contents.items()})
    return paths


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


def load_translations(out_dir: Path, method: str, ratio: float, seed: int | None) -> np.ndarray | None:
    if seed is None:
        return None
    arrays = read_npz(out_dir / "cells" / method / f"r{ratio:.3f}-s{seed}" / "examples.npz")
    return arrays["translated"].astype(np.float32) if arrays and "translated" in arrays else None


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
    names = list(results["methods"])
    axes = block.subplots(len(names), len(ratios) + 2, squeeze=False, gridspec_kw={"wspace": 0.03, "hspace": 0.03})
    mask = examples["tumor_mask"][index]
    source, target = modalities(results)
    headers = [f"{source}\n(source)"] + [percent(r) for r in ratios] + [f"{target}\n(target)"]
    for row, name in enumerate(names):
        images = [examples["source"][index]]
        images += [None if translations[(name, r)] is None else translations[(name, r)][index] for r in ratios]
        images += [examples["target"][index]]
        for column, image in enumerate(images):
            ax = axes[row, column]
            outlined = column in (0, len(images) - 1)
            show_slice(ax, image, mask if outlined else None)
            if row == 0:
                ax.set_title(headers[column], fontsize=9)
        axes[row, 0].set_ylabel(f"{plain(name)}\n({training_kind(results['methods'][name])})", fontsize=9)


def show_slice(ax, image: np.ndarray | None, mask: np.ndarray | None) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    if image is None:
        ax.set_facecolor("#eeeeee")
        ax.text(0.5, 0.5, "not run", ha="center", va="center", transform=ax.transAxes, color="gray", fontsize=8)
        return
    ax.imshow(np.asarray(image, dtype=np.float32), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    if mask is not None and mask.any():
        ax.contour(mask.astype(np.float32), levels=[0.5], colors=MASK_CONTOUR, linewidths=0.9)


def message_figure(message: str) -> Figure:
    fig = Figure(figsize=(6, 1.2))
    fig.text(0.5, 0.5, plain(message), ha="center", va="center", fontsize=11)
    return fig


def render_png(fig: Figure, dpi: int = DPI) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, facecolor="white")
    return buffer.getvalue()


# ---- report.html -------------------------------------------------------------------------------

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; } th { background: #f2f2f2; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1em 0; } figure img { max-width: 100%; border: 1px solid #ddd; }
figcaption { font-size: 0.9em; color: #444; max-width: 60em; }
code { background: #f4f4f4; padding: 0 0.2em; } .muted { color: #666; }
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; } dl.facts dt { font-weight: 600; } dl.facts dd { margin: 0; }
"""

FIGURE2_CAPTION = (
    "After the paper's Figure 2. The classifier's calls on the translated holdout slices as the target domain's "
    "tumor fraction grows, split into healthy sources (top) and tumor sources (bottom). Green: called healthy; "
    "red: called tumor. An unbiased translator keeps the bars the same at every fraction. Black line: mean "
    "absolute pixel error between translation and real target (right axis, same scale in every panel)."
)
FIGURE3_CAPTION = (
    "After the paper's Figure 3 and Figure S1. The same two holdout slices translated by every method at every "
    "target tumor fraction: the source on the left, the real target on the right, tumor outlined in red."
)


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


NUMERIC = ' class="num"'


def markdown_table_html(markdown: str) -> str:
    """A pipe-table (header, alignment row, body rows) as an HTML table; every cell is escaped."""
    rows = [[cell.strip() for cell in line.strip().strip("|").split("|")] for line in markdown.strip().splitlines()]
    if len(rows) < 2:
        return f"<pre>{esc(markdown)}</pre>"
    header, alignment, body = rows[0], rows[1], rows[2:]
    numeric = [a.endswith(":") and not a.startswith(":") for a in alignment]

    def cells(row: list[str], tag: str) -> str:
        return "".join(f"<{tag}{NUMERIC if i < len(numeric) and numeric[i] else ''}>{esc(text)}</{tag}>" for i, text in enumerate(row))

    lines = [f"<table>\n<thead><tr>{cells(header, 'th')}</tr></thead>\n<tbody>"]
    lines += [f"<tr>{cells(row, 'td')}</tr>" for row in body]
    lines.append("</tbody>\n</table>")
    return "\n".join(lines)


def facts(pairs: list[tuple[str, Any]]) -> str:
    items = "".join(f"<dt>{esc(key)}</dt><dd>{esc(value)}</dd>" for key, value in pairs)
    return f'<dl class="facts">{items}</dl>'


def figure_html(file_name: str, png: bytes, alt: str, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><a href="{esc(file_name)}"><img src="data:image/png;base64,{data}" alt="{esc(alt)}"></a>'
        f'<figcaption>{esc(caption)} <a href="{esc(file_name)}">{esc(file_name)}</a></figcaption></figure>'
    )


def origin_text(origin: dict | None) -> str:
    """'benchbias 0.1.0, file benchbias_plugins/l1.py' from a results file's origin record."""
    if not origin:
        return "origin unknown"
    release = f"{origin['distribution']} {origin['version']}, " if origin.get("distribution") else ""
    return f"{release}{origin['source']} {origin['location']}"


def robustness_markdown(robustness: dict) -> str:
    """The judge's robustness table: tumor-called rates on the real holdout under benign perturbations."""
    base = robustness["unperturbed"]
    lines = [
        "| real target holdout | healthy inputs called tumor | tumor inputs called tumor | largest change |",
        "|---|---:|---:|---:|",
        f"| unperturbed | {fmt(base['healthy_inputs'], 2)} | {fmt(base['tumor_inputs'], 2)} |  |",
    ]
    lines += [
        f"| {row['perturbation']} | {fmt(row['healthy_inputs'], 2)} | {fmt(row['tumor_inputs'], 2)} | {fmt(row['max_shift'], 2)} |"
        for row in robustness["perturbed"]
    ]
    return "\n".join(lines)


def classifier_html(results: dict) -> str:
    c = results.get("classifier", {})
    problems = c.get("quality_problems") or []
    verdict = (
        f'<p><strong>Warning: this judge falls short of the standard:</strong> {esc("; ".join(problems))}.</p>'
        if problems
        else "<p>The judge meets the standard: holdout accuracy at least 0.93, and no benign perturbation moves a rate by more than 0.05.</p>"
    )
    robustness = c.get("robustness")
    table = markdown_table_html(robustness_markdown(robustness)) if robustness else ""
    return verdict + facts(
        [
            ("judge", f"{c.get('name', 'n/a')} ({origin_text(c.get('origin'))})"),
            ("weights sha256", f"{c.get('sha256', 'n/a')} ({'pinned with the benchmark' if c.get('pinned') else 'trained for this protocol, kept in the cache'})"),
            ("holdout accuracy", fmt(c.get("holdout_accuracy"))),
            ("holdout sensitivity", fmt(c.get("holdout_sensitivity"))),
            ("holdout specificity", fmt(c.get("holdout_specificity"))),
            ("trained on", f"{c.get('train_slices', 'n/a')} real target slices ({c.get('train_tumor_slices', 'n/a')} with tumor), {c.get('steps', 'n/a')} steps"),
        ]
    ) + table


def methods_html(results: dict) -> str:
    parts = []
    for name, method in results["methods"].items():
        params = ", ".join(f"{k}={v}" for k, v in method.get("params", {}).items())
        parts.append(
            f"<h3>{esc(name)}</h3>\n"
            f'<p class="muted">plugin <code>{esc(method.get("plugin"))}</code> ({esc(origin_text(method.get("origin")))}), '
            f"{esc(training_kind(method))}, {esc(method.get('steps'))} steps; params: {esc(params or 'none')}</p>\n"
            f"{markdown_table_html(ratio_table(method))}"
        )
    return "\n".join(parts)


def provenance_html(results: dict) -> str:
    bench, prov, data = results["benchmark"], results.get("provenance", {}), results.get("dataset", {})
    packages = ", ".join(f"{k} {v}" for k, v in prov.get("packages", {}).items())
    holdout = data.get("holdout", {})
    return facts(
        [
            ("benchmark file", bench.get("file", "n/a")),
            ("config hash", bench.get("config_hash", "n/a")),
            ("protocol hash", bench.get("protocol_hash", "n/a")),
            ("seeds", ", ".join(map(str, prov.get("seeds", []))) or "n/a"),
            ("dataset fingerprint", data.get("fingerprint", "n/a")),
            ("dataset", f"{data.get('layout', 'n/a')} at {data.get('root', 'n/a')}; {data.get('subjects', 'n/a')} subjects, "
                        f"{data.get('slices', 'n/a')} slices; holdout {holdout.get('size', 'n/a')} slices ({holdout.get('tumor', 'n/a')} with tumor)"),
            ("intensity scale", data.get("intensity_scale", "n/a")),
            ("benchbias version", prov.get("benchbias_version", "n/a")),
            ("packages", packages or "n/a"),
            ("python", f"{prov.get('python', 'n/a')} on {prov.get('platform', 'n/a')}"),
            ("git commit", prov.get("git_commit") or "n/a (not a git checkout)"),
            ("device", prov.get("device", "n/a")),
            ("started", prov.get("started", "n/a")),
            ("compute behind these results", f"{prov['compute_time_s']} s training and translating, summed over all "
                f"{prov.get('cells_run', 0) + prov.get('cells_reused', 0)} cells (whenever they ran)" if prov.get("compute_time_s") is not None else "n/a"),
            ("this invocation", f"{prov['wall_time_s']} s wall; {prov.get('cells_run', 'n/a')} cells computed now, "
                f"{prov.get('cells_reused', 'n/a')} reused from earlier invocations" if prov.get("wall_time_s") is not None else "n/a"),
        ]
    )


def report_html(results: dict, figures: dict[str, bytes]) -> str:
    bench = results["benchmark"]
    name = bench["name"]
    description = bench.get("config", {}).get("description", "")
    source, target = modalities(results)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>benchbias report: {esc(name)}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>benchbias report: {esc(name)}</h1>
<p class="muted">{esc(description)}</p>
<p>Translators are trained {esc(source)} &rarr; {esc(target)} at each target tumor fraction and a classifier trained on real {esc(target)} slices
says tumor or healthy for every translated holdout slice (Cohen, Luck &amp; Honari 2018).</p>

<h2>Verdict: this run's ranking</h2>
{markdown_table_html(ranked_table(results))}
<p><strong>Ranking rule:</strong> {esc(results.get("ranking_rule", "n/a"))}.</p>

<h2>The judge</h2>
{classifier_html(results)}

<h2>Classifier calls against the target tumor fraction (Figure 2)</h2>
{figure_html(FIGURE2, figures[FIGURE2], "Figure 2: classifier calls and pixel error per target tumor fraction", FIGURE2_CAPTION)}

<h2>Example translations (Figure 3)</h2>
{figure_html(FIGURE3, figures[FIGURE3], "Figure 3: example translations per target tumor fraction", FIGURE3_CAPTION)}

<h2>Per-method scores</h2>
{methods_html(results)}

<h2>Provenance</h2>
{provenance_html(results)}
</body>
</html>
"""
