"""A run's report, written beside ``results.json``: the HTML page and the PNG files of its figures
(drawn by :mod:`benchbias.report.figures`; tables come from :mod:`benchbias.report.tables`).

* ``figure2.png``: the paper's Figure 2 (the judge's calls and the pixel error per target fraction);
* ``figure3.png``: the paper's Figure 3 / S1 (two holdout slices translated at every fraction);
* ``paper-claims.png``: the paper's Figure 2 claims (:mod:`benchbias.scoring.claims`), when the benchmark
  carries them and the run has the three baselines;
* ``hallucination-<method>.png``: where each method adds or removes tumor (when the benchmark has a
  segmentation judge);
* ``report.html``: self-contained (figures embedded as data URIs, inline CSS, no scripts): ranking,
  more scores, the judges' quality, the figures, per-cell tables and provenance. Modality names and the
  intensity scale come from the results file.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from benchbias.foundation.jsonio import dumps, read_json, replace_together
from benchbias.foundation.scoretable import ScoreTable
from benchbias.records.isolation import where_ran
from benchbias.report.claims_figure import draw_paper_claims
from benchbias.report.figures import (
    draw_figure2,
    draw_figure3,
    modalities,
    render_png,
    training_kind,
)
from benchbias.report.glance import column_definitions, dataset_words, method_sentences
from benchbias.report.judges_html import classifier_html, esc, extra_judges_html, facts, origin_text
from benchbias.report.maps import draw_hallucination_map, has_segmentations
from benchbias.report.tables import MORE_NOTE, Rows, cell_rows, more_rows_of_results, ranked_rows_of_results, second_judge_sentence
from benchbias.report.training import draw_loss_curves, has_loss_curves
from benchbias.scoring import claims as paper_claims
from benchbias.scoring.claims_section import claims_in, section
from benchbias.scoring.summary import fmt

FIGURE2 = "figure2.png"
FIGURE3 = "figure3.png"
CLAIMS_FIGURE = "paper-claims.png"
REPORT = "report.html"


def method_file(kind: str, method: str) -> str:
    """``<kind>-<method>.png``; a method name that is not a safe file name gets a readable, unique
    stand-in (method names come from benchmark files)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", method)
    if safe != method:
        safe += "-" + hashlib.sha256(method.encode()).hexdigest()[:8]
    return f"{kind}-{safe}.png"


def hallucination_map_file(method: str) -> str:
    return method_file("hallucination", method)


def loss_curves_file(method: str) -> str:
    return method_file("losses", method)


def write_report(out_dir: Path, results: dict | None = None, with_results: bool = False) -> dict[str, Path]:
    """Write the figures and report.html into ``out_dir``; return their paths.

    ``results`` defaults to ``out_dir/results.json``; ``with_results`` writes it too, as
    ``results.json``. All of them are rendered and written to temporary files before any is
    renamed into place, so a failure (a full disk, a bad example file) leaves the old set, which agrees.
    Example images are read from ``out_dir`` (``examples.npz`` and each cell's ``translations.npz``
    and ``judged.npz``); missing or unreadable ones are drawn as gaps.
    """
    out_dir = Path(out_dir)
    if results is None:
        results = read_json(out_dir / "results.json")
    figures = {FIGURE2: render_png(draw_figure2(results)), FIGURE3: render_png(draw_figure3(results, out_dir))}
    claims = section(results)
    if claims is not None:
        figures[CLAIMS_FIGURE] = render_png(draw_paper_claims(claims_in(claims)))
    if has_segmentations(out_dir):
        for name in results["methods"]:
            figures[hallucination_map_file(name)] = render_png(draw_hallucination_map(results, out_dir, name))
    for name, method in results["methods"].items():
        if has_loss_curves(method):
            figures[loss_curves_file(name)] = render_png(draw_loss_curves(results, name))
    page = report_html(results, figures)
    contents = {file_name.removesuffix(".png"): (file_name, png) for file_name, png in figures.items()}  # figure2, figure3, hallucination-<method>
    contents["html"] = (REPORT, page.encode())
    if with_results:
        contents["results"] = ("results.json", dumps(results).encode())
    paths = {key: out_dir / file_name for key, (file_name, _) in contents.items()}
    replace_together({paths[key]: content for key, (_, content) in contents.items()})
    return paths


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
dl.facts { display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; } dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; } dl.columns { font-size: 0.85em; gap: 0.1em 1em; }
.scroll { overflow-x: auto; max-width: 100%; } .scroll table { margin: 0; }
ul.glance { padding-left: 1.2em; } ul.glance li { margin: 0.3em 0; } .warning { color: #a00000; font-weight: 600; }
"""

FIGURE2_CAPTION = (
    "After the paper's Figure 2. The classifier's calls on the translated holdout slices as the target domain's "
    "tumor fraction grows, split into healthy sources (top) and tumor sources (bottom). In both rows red is a wrong "
    "call, drawn from the bottom (top row: a healthy slice called tumor, a hallucinated tumor; bottom row: a tumor "
    "slice called healthy, an erased tumor) and green a right one. An unbiased translator keeps the bars the same "
    "at every fraction. Black line: mean "
    "absolute pixel error between translation and real target (right axis, same scale in every panel)."
)
FIGURE3_CAPTION = (
    "After the paper's Figure 3 and Figure S1. The same two holdout slices translated by every method at every "
    "target tumor fraction: the source on the left, the real target on the right, tumor outlined in red."
)


def figure_html(file_name: str, png: bytes, alt: str, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><a href="{esc(file_name)}"><img src="data:image/png;base64,{data}" alt="{esc(alt)}"></a>'
        f'<figcaption>{esc(caption)} <a href="{esc(file_name)}">{esc(file_name)}</a></figcaption></figure>'
    )


def methods_html(results: dict) -> str:
    table = ScoreTable.from_json(results["score_table"])
    parts = ['<p class="muted">Brackets: 95% bootstrap interval over the holdout slices that count for the score.</p>']
    for name, method in results["methods"].items():
        params = ", ".join(f"{k}={v}" for k, v in method.get("params", {}).items())
        parts.append(
            f"<h3>{esc(name)}</h3>\n"
            f'<p class="muted">plugin <code>{esc(method.get("plugin"))}</code> ({esc(origin_text(method.get("origin")))}), '
            f"{esc(training_kind(method))}, {esc(method.get('steps'))} steps; params: {esc(params or 'none')}</p>\n"
            f'<div class="scroll">{cell_rows(method, table).html()}</div>'
        )
    return "\n".join(parts)


def machine_text(machine: dict | None) -> str:
    """'AMD EPYC 7B13, torch kernels AVX2, 1 torch thread' from a provenance's machine record."""
    if not machine:
        return "n/a (recorded by later versions)"
    threads = machine.get("torch_threads")
    return f"{machine.get('cpu_model', 'n/a')}, torch kernels {machine.get('cpu_capability', 'n/a')}, {threads} torch thread{'' if threads == 1 else 's'}"


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
            (
                "dataset",
                f"{dataset_words(results)} at {data.get('root', 'n/a')}; {data.get('subjects', 'n/a')} subjects, "
                f"{data.get('slices', 'n/a')} slices; holdout {holdout.get('size', 'n/a')} slices ({holdout.get('tumor', 'n/a')} with tumor)",
            ),
            ("intensity scale", data.get("intensity_scale", "n/a")),
            ("modalities", " -> ".join(modalities(results))),
            ("benchbias version", prov.get("benchbias_version", "n/a")),
            ("packages", packages or "n/a"),
            ("python", f"{prov.get('python', 'n/a')} on {prov.get('platform', 'n/a')}"),
            ("git commit", prov.get("git_commit") or "n/a (not a git checkout)"),
            ("device", prov.get("device", "n/a")),
            ("machine", machine_text(prov.get("machine"))),
            ("started", prov.get("started", "n/a")),
            (
                "translators ran",
                where_ran(prov.get("isolation", "none")),
            ),
            (
                "compute behind these results",
                f"{prov['compute_time_s']} s training and translating, summed over all "
                f"{prov.get('cells_run', 0) + prov.get('cells_reused', 0)} cells (whenever they ran)"
                if prov.get("compute_time_s") is not None
                else "n/a",
            ),
            (
                "this invocation",
                f"{prov['wall_time_s']} s wall; {prov.get('cells_run', 'n/a')} cells computed now, "
                f"{prov.get('cells_reused', 'n/a')} reused from earlier invocations ({prov.get('cells_rescored', 0)} of them scored again)"
                if prov.get("wall_time_s") is not None
                else "n/a",
            ),
        ]
    )


def hallucination_html(results: dict, figures: dict[str, bytes]) -> str:
    source, target = modalities(results)
    parts = []
    for name in results["methods"]:
        file_name = hallucination_map_file(name)
        if file_name in figures:
            caption = (
                f"{name}: for a tumor and a healthy holdout slice, the {source} source, the real {target} and, at every target tumor "
                f"fraction, the translation and its difference to the real {target} (red: brighter, blue: darker). Contours: the "
                "segmentation judge's tumor outline on the real target (green) and on the translation (magenta)."
            )
            parts.append(figure_html(file_name, figures[file_name], f"hallucination map of {name}", caption))
    if not parts:
        return "<p>This benchmark has no segmentation judge (<code>segmenter:</code> in its YAML file), so no hallucination maps.</p>"
    return "\n".join(parts)


def training_html(results: dict, figures: dict[str, bytes]) -> str:
    parts = []
    for name in results["methods"]:
        file_name = loss_curves_file(name)
        if file_name in figures:
            points = max(len(c["loss_curve"]["steps"]) for c in results["methods"][name]["cells"] if c.get("loss_curve"))
            caption = (
                f"{name}: each loss term it reported while training, as means over {points} equal stretches of its steps; "
                "one line per cell, coloured by the cell's target tumor fraction."
            )
            parts.append(figure_html(file_name, figures[file_name], f"training losses of {name}", caption))
    if not parts:
        return "<p>No loss curves: these cells were computed by an earlier benchbias, or the translators reported no losses.</p>"
    return "\n".join(parts)


CLAIMS_CAPTION = (
    "The paper's four Figure 2 claims on the three baselines, seeds pooled. c1: CycleGAN's tumor-called rate on healthy "
    "inputs against the target tumor fraction (dashed: the means of the two lowest and the two highest fractions); "
    "c2: each baseline's composition sensitivity; c3: L1's rate on healthy inputs and the band it must stay in; "
    "c4: L1's pixel error on tumor inputs (grey, right axis) with the 1.2x threshold it must reach at r = 0, and its erasure "
    "with the ceiling it must stay under from r = 0.2 on."
)


def claim_rows(claims: list[paper_claims.ClaimResult]) -> Rows:
    rows = Rows(["claim", "verdict", "measured", "in the paper's words"])
    rows.body += [[f"{c.id}: {c.statement}", c.verdict, c.measured, c.paper] for c in claims]
    return rows


def claims_html(results: dict, figures: dict[str, bytes]) -> str:
    """The paper's claims, when the benchmark carries them and the run has the three baselines."""
    found = section(results)
    if found is None:
        return ""
    claims = claims_in(found)
    stand_ins = ", ".join(f"{plugin}: {name}" for plugin, name in found["methods"].items())
    per_seed = ""
    if len(found["per_seed"]) > 1:
        rows = Rows(["claim", *(f"seed {row['seed']}" for row in found["per_seed"])])
        for i, claim in enumerate(claims):
            rows.body.append([claim.id, *(paper_claims.ClaimResult.from_dict(row["claims"][i]).verdict for row in found["per_seed"])])
        per_seed = f"<p>Each seed alone:</p>\n{rows.html()}"
    return f"""<h2>Paper claims</h2>
<p>What Cohen, Luck &amp; Honari read in their Figure 2, as four claims checked on this run's baselines ({esc(stand_ins)}), seeds pooled:
<strong>{esc(paper_claims.summary_line(claims))}</strong>. The thresholds are benchbias's; <code>benchbias claims</code> prints the same for any
results file or leaderboard.</p>
{claim_rows(claims).html()}
{per_seed}
{figure_html(CLAIMS_FIGURE, figures[CLAIMS_FIGURE], "the paper's claims, one panel each", CLAIMS_CAPTION)}
"""


def glance_html(results: dict) -> str:
    """The first screen: one sentence per method, the judge's standing and the data set."""
    items = []
    for name, sentence in method_sentences(results):
        warnings = "".join(f'<br><span class="warning">Warning: {esc(w)}</span>' for w in results["methods"][name].get("warnings", []))
        items.append(f"<li><strong>{esc(name)}</strong>{esc(sentence[len(name) :])}{warnings}</li>")
    c = results.get("classifier", {})
    problems = c.get("quality_problems") or []
    judge = (
        f'<span class="warning">Warning: the judge ({esc(c.get("name", "n/a"))}) falls short of the standard ({esc("; ".join(problems))}): '
        "its calls, and so these numbers, are not to be trusted.</span>"
        if problems
        else f"The judge ({esc(c.get('name', 'n/a'))}, holdout accuracy {fmt(c.get('holdout_accuracy'), 2)}) meets the standard."
    )
    return f"""<ul class="glance">
{chr(10).join(items)}
</ul>
<p>{judge} Its details, and the other judges', follow the figures. Data: {esc(dataset_words(results))}.</p>"""


def verdict_html(results: dict) -> str:
    """The ranking table with better-direction arrows, and what each of its columns means."""
    definitions = "".join(f"<dt>{esc(column)}</dt><dd>{esc(meaning)}</dd>" for column, meaning in column_definitions(results))
    return f"""<div class="scroll">{ranked_rows_of_results(results, arrows=True).html()}</div>
<p><strong>The columns</strong> (&darr; lower is better, &uarr; higher is better):</p><dl class="facts columns">{definitions}</dl>"""


def report_html(results: dict, figures: dict[str, bytes]) -> str:
    bench = results["benchmark"]
    name = bench["name"]
    description = bench.get("config", {}).get("description", "")
    source, target = modalities(results)
    more = more_rows_of_results(results)
    second = f"<p>{esc(second_judge_sentence(results))}</p>" if results.get("ranking_2") else ""
    intensities = esc(results.get("dataset", {}).get("intensity_scale", "n/a"))
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
{glance_html(results)}

<h2>Verdict: this run's ranking</h2>
{verdict_html(results)}
<p><strong>Ranking rule:</strong> {esc(results.get("ranking_rule", "n/a"))}.</p>
{second}
<p class="muted">Translators are trained {esc(source)} &rarr; {esc(target)} at each target tumor fraction and a classifier
trained on real {esc(target)} slices says tumor or healthy for every translated holdout slice (Cohen, Luck &amp; Honari 2018).
Intensities: {intensities}.</p>

<h2>Classifier calls against the target tumor fraction (Figure 2)</h2>
{figure_html(FIGURE2, figures[FIGURE2], "Figure 2: classifier calls and pixel error per target tumor fraction", FIGURE2_CAPTION)}
{claims_html(results, figures)}
{f'<h2>More scores over the sweep</h2><p>{esc(MORE_NOTE)}.</p><div class="scroll">' + more.html() + "</div>" if more else ""}

<h2>Example translations (Figure 3)</h2>
{figure_html(FIGURE3, figures[FIGURE3], "Figure 3: example translations per target tumor fraction", FIGURE3_CAPTION)}

<h2>Where tumor is added or removed (hallucination maps)</h2>
{hallucination_html(results, figures)}

<h2>Training losses</h2>
{training_html(results, figures)}

<h2>The judges</h2>
{classifier_html(results)}
{extra_judges_html(results)}

<h2>Per-cell scores</h2>
{methods_html(results)}

<h2>Provenance</h2>
{provenance_html(results)}
</body>
</html>
"""
