"""JSON Schemas (draft 2020-12) of the two files people exchange: a run's ``results.json`` and a
``leaderboards/<benchmark>.json``. ``benchbias schema results|leaderboard`` prints them for other tools.

Every number must be finite. Which scores a cell has, and their bounds, come from the file's own
``score_table`` (:mod:`benchbias.foundation.scoretable`); the schema requires the scores the verdict is computed
from, and :mod:`benchbias.records.validation` checks every score against its declared bounds. Bump the version
in ``RESULTS_SCHEMA`` / ``LEADERBOARD_SCHEMA`` whenever a required field changes, and teach
:mod:`benchbias.records.migrate` to read the previous one.
"""

from __future__ import annotations

from typing import Any

from benchbias.foundation.scoretable import BETTER, KINDS, LEVELS
from benchbias.scoring.summary import RANKED_BY, VERDICT_INPUTS

RESULTS_SCHEMA = "benchbias.results/5"
LEADERBOARD_SCHEMA = "benchbias.leaderboard/4"

_NUMBER = {"type": "number"}
_RATE = {"type": "number", "minimum": 0, "maximum": 1}
_NULLABLE_RATE = {"type": ["number", "null"], "minimum": 0, "maximum": 1}
_COUNT = {"type": "integer", "minimum": 0}
_SECONDS = {"type": "number", "minimum": 0}
_TEXT = {"type": "string", "minLength": 1}
_HASH = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_DATE = {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"}
_NULLABLE_NUMBER = {"type": ["number", "null"]}
_INTERVAL = {"oneOf": [{"type": "null"}, {"type": "array", "items": _NUMBER, "minItems": 2, "maxItems": 2}]}


def _object(properties: dict[str, Any], extra: bool = False, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """An object whose listed properties are all required (except ``optional``)."""
    return {
        "type": "object",
        "properties": properties,
        "required": [k for k in properties if k not in optional],
        "additionalProperties": extra,
    }


DEFS: dict[str, Any] = {
    # A cell's scores: those the verdict is computed from, plus whatever the score table declares.
    "scores": {**_object({k: _NULLABLE_RATE for k in VERDICT_INPUTS}), "additionalProperties": _NULLABLE_NUMBER},
    "intervals": {"type": "object", "additionalProperties": _INTERVAL},
    "cell": _object(
        {
            "ratio": _RATE,
            "seed": _COUNT,
            "scores": {"$ref": "#/$defs/scores"},
            "ci95": {"$ref": "#/$defs/intervals"},
            "fingerprint": _TEXT,
            "scored_with": _TEXT,
            "method": _TEXT,
            "target_tumor_slices": _COUNT,
            "train_time_s": _SECONDS,
            "translate_time_s": _SECONDS,
            "trained_together": _COUNT,
            # Where the translator's code ran when it was not the runner's process: "bubblewrap <version>".
            "isolation": _TEXT,
            # The identity of the stored translations.npz the scores are of (run/cells.py: translations_sha256).
            "translations_sha256": _HASH,
            # Added after results/4 was published (optional: stored cells stay valid): the training
            # losses the translator reported, as means over equal stretches of its steps.
            "loss_curve": _object(
                {
                    "steps": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1},
                    "terms": {"type": "object", "additionalProperties": {"type": "array", "items": _NULLABLE_NUMBER}},
                }
            ),
        },
        extra=True,
        optional=(
            "ci95",
            "fingerprint",
            "scored_with",
            "method",
            "target_tumor_slices",
            "train_time_s",
            "translate_time_s",
            "trained_together",
            "isolation",
            "translations_sha256",
            "loss_curve",
        ),
    ),
    "score": _object(
        {
            "name": {"type": "string", "pattern": "^[a-z_][a-z0-9_]*$"},
            "label": _TEXT,
            "help": {"type": "string"},
            "kind": {"enum": list(KINDS)},
            "digits": {"type": "integer", "minimum": 0, "maximum": 8},
            "bounds": {"type": "array", "items": _NULLABLE_NUMBER, "minItems": 2, "maxItems": 2},
            "better": {"enum": list(BETTER)},
            "per_fraction": {"type": "boolean"},
            "sweep": {"type": "boolean"},
            "tolerance": {"type": ["number", "null"], "minimum": 0},
            "verdict": {"type": "boolean"},
            "level": {"enum": list(LEVELS)},
            "origin": _TEXT,
        }
    ),
    "score_table": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/score"}},
    "trend": _object(
        {
            "slope": {"type": ["number", "null"]},
            "intercept": {"type": ["number", "null"]},
            "slope_p": _NULLABLE_RATE,
            "spearman_rho": {"type": ["number", "null"], "minimum": -1, "maximum": 1},
            "spearman_p": _NULLABLE_RATE,
        }
    ),
    "summary": {
        **_object(
            {
                "overall": {"$ref": "#/$defs/trend"},
                "healthy_inputs": {"$ref": "#/$defs/trend"},
                "tumor_inputs": {"$ref": "#/$defs/trend"},
                "hallucination_trend": {"$ref": "#/$defs/trend"},
                "erasure_trend": {"$ref": "#/$defs/trend"},
                **{k: _NULLABLE_NUMBER for k in RANKED_BY},
                "n_seeds": {"type": "integer", "minimum": 1},
                "per_seed": {
                    "type": "array",
                    "minItems": 1,
                    "items": {**_object({"seed": _COUNT, **{k: _NULLABLE_NUMBER for k in RANKED_BY}}), "additionalProperties": _NULLABLE_NUMBER},
                },
                "ci95": {"$ref": "#/$defs/intervals"},
            }
        ),
        "additionalProperties": _NULLABLE_NUMBER,  # the sweep scores of the score table
    },
    "per_fraction": {
        "type": "array",
        "minItems": 1,
        "items": _object(
            {
                "ratio": _RATE,
                "n_seeds": {"type": "integer", "minimum": 1},
                "mean": {"type": "object", "additionalProperties": _NULLABLE_NUMBER},
                "ci95": {"$ref": "#/$defs/intervals"},
            }
        ),
    },
    "origin": _object(
        {
            "source": {"enum": ["entry point", "file"]},
            "location": _TEXT,
            "distribution": {"type": ["string", "null"]},
            "version": {"type": ["string", "null"]},
            "sha256": {"oneOf": [{"type": "null"}, _HASH]},
            # a translator's code identity (its classes' modules), which leaderboard verify pins
            "code_sha256": _TEXT,
        },
        optional=("code_sha256",),
    ),
    "classifier": _object(
        {
            "name": _TEXT,
            "version": _TEXT,
            "origin": {"$ref": "#/$defs/origin"},
            "holdout_accuracy": _RATE,
            "holdout_sensitivity": _NULLABLE_RATE,
            "holdout_specificity": _NULLABLE_RATE,
            "sha256": _HASH,
        },
        extra=True,
    ),
    # Judges that add scores but not the verdict: the segmentation judge and the second classifier.
    "extra_judges": {
        "type": "object",
        "additionalProperties": _object({"name": _TEXT, "sha256": _HASH, "pinned": {"type": "boolean"}}, extra=True),
    },
    # ``tf32`` (CUDA runs) and ``precision_override`` (the benchmark's pinned precision settings a run
    # overrode) were added later: optional.
    "compute_settings": _object(
        {
            "device": _TEXT,
            "threads": {"type": ["integer", "null"], "minimum": 1},
            "amp": {"type": "boolean"},
            "tf32": {"type": "boolean"},
            "precision_override": {"type": "array", "items": {"enum": ["amp", "tf32"]}, "minItems": 1},
        },
        optional=("tf32", "precision_override"),
    ),
    "packages": {"type": "object", "additionalProperties": {"type": "string"}},
    # The CPU behind a run (benchbias.records.provenance.machine): where two runs share it, their cells
    # are bit for bit the same (``check`` compares them exactly). Added after results/4 and leaderboard/3
    # were published, so optional where it appears.
    # training_code: the identity of benchbias's training code (added later: optional)
    "machine": _object(
        {"cpu_model": _TEXT, "cpu_capability": _TEXT, "torch_threads": {"type": "integer", "minimum": 1}, "training_code": _TEXT},
        optional=("training_code",),
        extra=True,
    ),
    "seeds": {"type": "array", "items": _COUNT, "minItems": 1, "uniqueItems": True},
    # The paper's Figure 2 claims (benchbias.scoring.claims), when the benchmark carries them.
    "claim": _object(
        {
            "id": _TEXT,
            "statement": _TEXT,
            "paper": _TEXT,
            "holds": {"type": "boolean"},
            "evaluated": {"type": "boolean"},
            "figures": {"type": "object"},
            "detail": _TEXT,
        }
    ),
    "claims": {"type": "array", "items": {"$ref": "#/$defs/claim"}},
}

# The resolved benchmark embedded in results: checked here only as far as validation reads it.
_CONFIG = _object({"domains": _object({"target_fractions": {"type": "array", "minItems": 1, "items": _RATE}}, extra=True)}, extra=True)

_METHOD_FIELDS = {
    "plugin": _TEXT,
    "version": _TEXT,
    "origin": {"$ref": "#/$defs/origin"},
    "paired": {"type": "boolean"},
    "params": {"type": "object"},
    "steps": {"type": "integer", "minimum": 1},
    "cells": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/cell"}},
    "per_fraction": {"$ref": "#/$defs/per_fraction"},
    "summary": {"$ref": "#/$defs/summary"},
}

RESULTS: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "benchbias results of one run",
    **_object(
        {
            "schema": {"const": RESULTS_SCHEMA},
            "benchmark": _object({"name": _TEXT, "file": {"type": "string"}, "config_hash": _HASH, "protocol_hash": _HASH, "config": _CONFIG}),
            "dataset": _object({"fingerprint": _TEXT}, extra=True),
            "classifier": {"$ref": "#/$defs/classifier"},
            "extra_judges": {"$ref": "#/$defs/extra_judges"},
            "score_table": {"$ref": "#/$defs/score_table"},
            # warnings: added after results/4 was published, optional (e.g. a pixel error far above the baselines').
            "methods": {
                "type": "object",
                "minProperties": 1,
                "additionalProperties": _object({**_METHOD_FIELDS, "warnings": {"type": "array", "items": _TEXT}}, optional=("warnings",)),
            },
            "ranking": {"type": "array", "items": _object({"rank": _COUNT, "method": _TEXT}, extra=True)},
            "ranking_2": {"type": "array", "items": _object({"rank": _COUNT, "method": _TEXT}, extra=True)},
            "ranking_rule": {"type": "string"},
            # Added after results/4 was published: optional, so files without it stay valid.
            "paper_claims": _object(
                {
                    "paper": _TEXT,
                    "methods": {"type": "object", "additionalProperties": _TEXT},
                    "seeds": {"type": "array", "items": _COUNT},
                    "holding": _COUNT,
                    "claims": {"$ref": "#/$defs/claims"},
                    "per_seed": {"type": "array", "items": _object({"seed": _COUNT, "claims": {"$ref": "#/$defs/claims"}})},
                    # Which definition of the claims computed the section (absent: the first).
                    "definition": _COUNT,
                },
                optional=("definition",),
            ),
            "provenance": _object(
                {
                    "benchbias_version": _TEXT,
                    "seeds": {"$ref": "#/$defs/seeds"},
                    "packages": {"$ref": "#/$defs/packages"},
                    "python": _TEXT,
                    "platform": _TEXT,
                    "git_commit": {"type": ["string", "null"]},
                    "device": _TEXT,
                    "started": _DATE,
                    "finished": _DATE,
                    "wall_time_s": _SECONDS,
                    "cells_run": _COUNT,
                    "cells_reused": _COUNT,
                    "cells_rescored": _COUNT,
                    "compute_time_s": _SECONDS,
                    "compute_settings": {"$ref": "#/$defs/compute_settings"},
                    "executor": _TEXT,
                    # Added after results/4 was published: optional, so files without it stay valid.
                    "machine": {"$ref": "#/$defs/machine"},
                    # Where the translators ran: "bubblewrap <version>" (run --isolate), "none" or "partial".
                    "isolation": _TEXT,
                },
                optional=("executor", "cells_rescored", "machine", "isolation"),
            ),
        },
        optional=("extra_judges", "ranking_2", "paper_claims"),
    ),
    "$defs": DEFS,
}

ENTRY: dict[str, Any] = _object(
    {
        "method": _TEXT,
        **_METHOD_FIELDS,
        "benchmark": _TEXT,
        "protocol_hash": _HASH,
        "dataset_fingerprint": _TEXT,
        "seeds": {"$ref": "#/$defs/seeds"},
        "classifier": {"$ref": "#/$defs/classifier"},
        "packages": {"$ref": "#/$defs/packages"},
        "python": _TEXT,
        "platform": _TEXT,
        "device": _TEXT,
        "machine": {"$ref": "#/$defs/machine"},
        "git_commit": {"type": ["string", "null"]},
        "benchbias_version": _TEXT,
        "wall_time_s": _SECONDS,
        "compute_time_s": _SECONDS,
        "cells_run": _COUNT,
        "cells_reused": _COUNT,
        "run_started": _DATE,
        "run_finished": _DATE,
        "submitted": _DATE,
        "extra_judges": {"$ref": "#/$defs/extra_judges"},
        # benchbias leaderboard verify: the signed record of a re-run (benchbias.records.signatures)
        "verification": _object(
            {
                "season": _TEXT,
                "verified_at": _DATE,
                "sampled_cells": {"type": "array", "minItems": 1, "items": _object({"ratio": _RATE, "seed": _COUNT}, extra=True)},
                "tolerances": {"type": "object"},
                "private_judges": {"type": "object"},
                "key_id": _TEXT,
                "signature": _TEXT,
            },
            extra=True,
        ),
    },
    optional=("extra_judges", "machine", "verification"),
)

LEADERBOARD: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "benchbias leaderboard of one benchmark",
    **_object(
        {
            "schema": {"const": LEADERBOARD_SCHEMA},
            "benchmark": _TEXT,
            "protocol_hash": _HASH,
            "dataset_fingerprint": _TEXT,
            "judge_sha256": _HASH,
            "extra_judges": {"type": "object", "additionalProperties": _HASH},  # role -> the sha256 every entry scored with
            "score_table": {"$ref": "#/$defs/score_table"},
            "target_fractions": {"type": "array", "items": _RATE, "minItems": 2, "uniqueItems": True},
            "ranking_rule": _TEXT,
            "updated": _DATE,
            "entries": {"type": "array", "items": ENTRY},
        },
        optional=("extra_judges",),
    ),
    "$defs": DEFS,
}

SCHEMAS = {"results": RESULTS, "leaderboard": LEADERBOARD}
