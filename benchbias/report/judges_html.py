"""The judges' part of a report: what each judge is (name, weights, origin), how good it is on the
real holdout, and how robust to benign perturbations; and the small HTML helpers the report shares."""

from __future__ import annotations

import html
from typing import Any

from benchbias.report.tables import Rows
from benchbias.scoring.summary import fmt


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def facts(pairs: list[tuple[str, Any]]) -> str:
    items = "".join(f"<dt>{esc(key)}</dt><dd>{esc(value)}</dd>" for key, value in pairs)
    return f'<dl class="facts">{items}</dl>'


def origin_text(origin: dict | None) -> str:
    """'benchbias 0.1.0, file benchbias_plugins/l1.py' from a results file's origin record."""
    if not origin:
        return "origin unknown"
    release = f"{origin['distribution']} {origin['version']}, " if origin.get("distribution") else ""
    return f"{release}{origin['source']} {origin['location']}"


def robustness_rows(robustness: dict) -> Rows:
    """The judge's robustness table: tumor-called rates on the real holdout under benign perturbations."""
    base = robustness["unperturbed"]
    rows = Rows(["real target holdout", "healthy inputs called tumor", "tumor inputs called tumor", "largest change"], numeric={1, 2, 3})
    rows.body.append(["unperturbed", fmt(base["healthy_inputs"], 2), fmt(base["tumor_inputs"], 2), ""])
    rows.body += [
        [row["perturbation"], fmt(row["healthy_inputs"], 2), fmt(row["tumor_inputs"], 2), fmt(row["max_shift"], 2)] for row in robustness["perturbed"]
    ]
    return rows


def classifier_html(results: dict) -> str:
    c = results.get("classifier", {})
    problems = c.get("quality_problems") or []
    verdict = (
        f"<p><strong>Warning: this judge falls short of the standard:</strong> {esc('; '.join(problems))}.</p>"
        if problems
        else "<p>The judge meets the standard: holdout accuracy at least 0.93, and no benign perturbation moves a rate by more than 0.05.</p>"
    )
    robustness = c.get("robustness")
    table = robustness_rows(robustness).html() if robustness else ""
    return (
        verdict
        + facts(
            [
                ("judge", f"{c.get('name', 'n/a')} ({origin_text(c.get('origin'))})"),
                (
                    "weights sha256",
                    f"{c.get('sha256', 'n/a')} ({'pinned with the benchmark' if c.get('pinned') else 'trained for this protocol, kept in the cache'})",
                ),
                ("holdout accuracy", fmt(c.get("holdout_accuracy"))),
                ("holdout sensitivity", fmt(c.get("holdout_sensitivity"))),
                ("holdout specificity", fmt(c.get("holdout_specificity"))),
                (
                    "trained on",
                    f"{c.get('train_slices', 'n/a')} real target slices ({c.get('train_tumor_slices', 'n/a')} with tumor), {c.get('steps', 'n/a')} steps",
                ),
            ]
        )
        + table
    )


def extra_judges_html(results: dict) -> str:
    """The segmentation judge and the second judge: what they are and how good."""
    parts = []
    for role, j in results.get("extra_judges", {}).items():
        problems = j.get("quality_problems") or []
        title = "Segmentation judge" if role == "segmenter" else "Second judge"
        warning = f"<p><strong>Warning: it falls short:</strong> {esc('; '.join(problems))}.</p>" if problems else ""
        quality = (
            [
                ("holdout Dice (tumor slices)", fmt(j.get("holdout_dice"))),
                ("healthy holdout slices with any outlined pixel", fmt(j.get("holdout_false_positive_share"))),
            ]
            if role == "segmenter"
            else [
                ("holdout accuracy", fmt(j.get("holdout_accuracy"))),
                ("holdout sensitivity", fmt(j.get("holdout_sensitivity"))),
                ("holdout specificity", fmt(j.get("holdout_specificity"))),
            ]
        )
        parts.append(
            f"<h3>{title}</h3>{warning}"
            + facts(
                [
                    ("name", f"{j.get('name')} ({origin_text(j.get('origin'))})" if j.get("origin") else j.get("name")),
                    ("params", ", ".join(f"{k}={v}" for k, v in j.get("params", {}).items()) or "none"),
                    (
                        "weights sha256",
                        f"{j.get('sha256')} ({'pinned with the benchmark' if j.get('pinned') else 'trained for this protocol, kept in the cache'})",
                    ),
                    *quality,
                    (
                        "trained on",
                        f"{j.get('train_slices', 'n/a')} real target slices ({j.get('train_tumor_slices', 'n/a')} with tumor), "
                        f"{j.get('steps', 'n/a')} steps, {j.get('train_time_s', 'n/a')} s",
                    ),
                ]
            )
        )
    return "\n".join(parts)
