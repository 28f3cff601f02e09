"""A run's ``results.json``, assembled from its cells: each method's cells, per-fraction means and
summary over the sweep, the ranking, the judges' records, the data set and the provenance."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchbias import __version__
from benchbias.foundation.config import Benchmark
from benchbias.foundation.errors import BenchbiasError
from benchbias.foundation.jsonio import dumps
from benchbias.judges import pinned
from benchbias.records.isolation import isolation_of
from benchbias.records.provenance import provenance
from benchbias.records.schemas import RESULTS_SCHEMA
from benchbias.run.inputs import RunData, RunPlugins
from benchbias.run.keys import training_code
from benchbias.scoring.claims_section import section as claims_section
from benchbias.scoring.summary import RANKING_RULE, method_summary, per_fraction, rank, reference_methods

INTENSITY_SCALES = {  # what the MAE's [0, 1] scale means, per slices.normalization
    "percentile": "each volume scaled to [0, 1] (0 = its minimum, the background; 1 = its 99.5th percentile); MAE on that scale",
    "max": "each volume divided by its maximum, to [0, 1]; MAE on that scale",
    "dataset_max": "each modality divided by its maximum over the whole data set, to [0, 1]; MAE on that scale",
}
INTERNAL = ("format", "protocol_hash", "dataset_fingerprint")  # of a judge's record, checked when it is loaded


def results_of(
    bench: Benchmark,
    plugins: RunPlugins,
    data: RunData,
    judges: Mapping[str, dict[str, Any]],
    cells: Mapping[tuple[str, int, float], dict[str, Any]],
    run: dict[str, Any],
    kept: Mapping[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The results of a run: ``judges`` the judges' records by role, ``cells`` every finished cell by
    (method, seed, fraction), ``run`` what the runner recorded of itself (provenance), ``kept`` the
    entries of methods an earlier run into the folder computed and this one did not name
    (:func:`kept_methods`)."""
    methods = {}
    for method in plugins.methods:
        translator, entry = plugins.translators[method.name]
        mine = [cells[(method.name, seed, ratio)] for seed in bench.seeds for ratio in bench.domains.target_fractions]
        methods[method.name] = {
            "plugin": method.plugin,
            "version": entry.origin.release,
            "origin": {**entry.origin.to_dict(), "code_sha256": entry.code_sha256},
            "paired": translator.paired,
            "params": translator.hparams,
            "steps": method.steps,
            "cells": mine,
            "per_fraction": per_fraction(mine, plugins.score_table),
            "summary": method_summary(mine, plugins.score_table),
        }
    methods.update({name: method for name, method in (kept or {}).items() if name not in methods})
    classifier = judges["classifier"]
    results = {
        "schema": RESULTS_SCHEMA,
        "benchmark": {
            "name": bench.name,
            "file": bench.source_file,
            "config_hash": bench.hash(),
            "protocol_hash": bench.protocol_hash(),
            "config": bench.to_dict(),
        },
        "dataset": dataset_summary(bench, data),
        "classifier": {
            **{k: v for k, v in classifier.items() if k not in INTERNAL},
            "quality_problems": pinned.quality_problems(classifier),
            "version": plugins.classifier_entry.origin.release,
            "origin": plugins.classifier_entry.origin.to_dict(),
        },
        **({"extra_judges": extra_judges_summary(plugins, judges)} if len(judges) > 1 else {}),
        "score_table": plugins.score_table.to_json(),
        "methods": methods,
        "ranking": rank({name: m["summary"] for name, m in methods.items()}, references=reference_methods(methods)),
        **({"ranking_2": rank({name: m["summary"] for name, m in methods.items()}, "_2", reference_methods(methods))} if "second_judge" in judges else {}),
        "ranking_rule": RANKING_RULE,
        "provenance": provenance_of(run, cells, judges),
    }
    section = claims_section(results)  # when the benchmark carries the paper's claims and has the three baselines
    if section is not None:
        results["paper_claims"] = section
    return json.loads(dumps(results))  # exactly what others will read back (tuples become lists)


def kept_methods(out: Path, bench: Benchmark, data: RunData, scored_with: str, chosen: set[str]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """The methods of the folder's earlier ``results.json`` that this run does not compute, when they
    are comparable with it (same protocol, data, seeds and fractions, cells scored by the same judges
    and metrics, every cell file still there): a rerun with fewer methods keeps the others in the
    results and the report. Returns them and a note per method that could not be kept."""
    from benchbias.records.validation import load_results

    path = out / "results.json"
    if not path.is_file():
        return {}, []
    try:
        previous = load_results(path)
    except BenchbiasError:
        return {}, []  # an unreadable file is rewritten; the cells of its methods stay on disk
    others = {name: m for name, m in previous["methods"].items() if name not in chosen}
    if not others:
        return {}, []
    same = (
        previous["benchmark"]["protocol_hash"] == bench.protocol_hash()
        and previous["dataset"]["fingerprint"] == data.data.fingerprint
        and previous["provenance"]["seeds"] == list(bench.seeds)
    )
    kept, notes = {}, []
    for name, method in others.items():
        stored = all((out / "cells" / name / f"r{c['ratio']:.3f}-s{c['seed']}.json").is_file() for c in method["cells"])
        if same and stored and all(c.get("scored_with") == scored_with for c in method["cells"]):
            kept[name] = method
        else:
            notes.append(
                f"{name} (in the folder's earlier results) is left out: its cells were made under other judges, data or seeds; rerun with --methods {name}"
            )
    return kept, notes


def provenance_of(run: dict[str, Any], cells: Mapping[tuple[str, int, float], dict[str, Any]], judges: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """``run``: the device, compute settings, executor, seeds, start, wall time and cell counts, and
    the roles of the judges trained now (their time counts)."""
    settings = run["compute_settings"]
    started: datetime = run["started"]
    made = provenance(run["device"], amp=settings["amp"], threads=settings["threads"], jobs=run["jobs"])
    made["machine"]["training_code"] = training_code()
    return {
        "benchbias_version": __version__,
        "seeds": list(run["seeds"]),
        **made,
        "executor": run["executor"],
        "started": started.isoformat(timespec="seconds"),
        "finished": run["finished"].isoformat(timespec="seconds"),
        "wall_time_s": run["wall_time_s"],
        "cells_run": run["cells_run"],
        "cells_reused": run["cells_reused"],
        "cells_rescored": run["cells_rescored"],
        "compute_time_s": round(
            sum(c["train_time_s"] + c["translate_time_s"] + c.get("score_time_s", 0.0) for c in cells.values())
            + sum(judges[role]["train_time_s"] for role in run["judges_trained"]), 1
        ),
        "compute_settings": settings,
        "isolation": isolation_of(cells.values()),
    }  # fmt: skip


def extra_judges_summary(plugins: RunPlugins, judges: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The records of the segmentation judge and the second judge, as results carry them."""
    extra = {}
    for role, record in judges.items():
        if role == "classifier":
            continue
        j = plugins.judges[role]
        extra[role] = {
            **{k: v for k, v in record.items() if k not in INTERNAL},
            "quality_problems": j.quality_problems(record),
            **({"version": j.entry.origin.release, "origin": j.entry.origin.to_dict()} if j.entry is not None else {}),
        }
    return extra


def dataset_summary(bench: Benchmark, data: RunData) -> dict[str, Any]:
    s, split = data.slices, data.split
    train_tumor = int(s.is_tumor[split.train].sum())
    return {
        "fingerprint": data.data.fingerprint,
        "cache_key": data.data.cache_key,
        "root": str(data.data.root),
        "layout": data.data.layout,
        "slices": len(s),
        "subjects": len(np.unique(s.case_id)),
        "train_subjects": len(split.train_subjects),
        "holdout_subjects": list(split.holdout_subjects),
        "train_slices": {"tumor": train_tumor, "healthy": len(split.train) - train_tumor},
        "holdout": {"size": len(split.holdout), "tumor": int(s.is_tumor[split.holdout].sum())},
        "intensity_scale": INTENSITY_SCALES[bench.slices.normalization],
    }
