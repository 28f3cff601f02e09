"""Read and check results and leaderboard files before anything trusts them.

Two layers: the JSON Schema (types, required fields, finite numbers, rates in [0, 1]), then the
cross-checks a schema cannot express: the cells cover the protocol's fractions and seeds exactly,
the summaries agree with the cells they were computed from, the protocol hash agrees with the
embedded protocol, and a leaderboard's entries all belong to its protocol. A hand-edited number is
therefore caught wherever it was edited. Every problem is one line ``FILE: FIELD: problem``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match

from benchbias.foundation.config import protocol_of, stable_hash
from benchbias.foundation.errors import BenchbiasError
from benchbias.foundation.jsonio import NonFinite, read_json
from benchbias.foundation.scoretable import ScoreTable
from benchbias.records.migrate import upgrade
from benchbias.records.schemas import DEFS, LEADERBOARD, LEADERBOARD_SCHEMA, RESULTS, RESULTS_SCHEMA
from benchbias.scoring.claims_section import section as claims_section
from benchbias.scoring.summary import method_summary, per_fraction, rank, reference_methods

_VALIDATORS = {kind: Draft202012Validator(schema) for kind, schema in (("results", RESULTS), ("leaderboard", LEADERBOARD))}
_CELL = Draft202012Validator(
    {"$defs": DEFS, "allOf": [{"$ref": "#/$defs/cell"}], "required": ["fingerprint", "method"], "properties": {"fingerprint": {"type": "string"}}}
)
_EXPECTED = {"results": RESULTS_SCHEMA, "leaderboard": LEADERBOARD_SCHEMA}
TOLERANCE = 1e-9  # recomputed summaries agree with stored ones to float round-off


class InvalidFile(BenchbiasError, ValueError):
    """A results or leaderboard file failed validation; the message names the file and the field."""

    def __init__(self, source: str, field: str, problem: str) -> None:
        self.source, self.field, self.problem = source, field, problem
        super().__init__(f"{source}: {field or '(top level)'}: {problem}")


def field_path(parts: Iterable[Any]) -> str:
    path = ""
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _describe(error: ValidationError) -> tuple[str, str]:
    path = list(error.absolute_path)
    if isinstance(error.instance, NonFinite) or (error.validator == "oneOf" and isinstance(error.instance, NonFinite)):
        return field_path(path), f"{error.instance} is not a finite number"
    if error.validator == "required":
        missing = next(k for k in error.validator_value if k not in error.instance)
        return field_path([*path, missing]), "is missing"
    if error.validator == "additionalProperties":
        return field_path(path), error.message.replace("Additional properties are not allowed", "unknown field")
    return field_path(path), error.message


def check_schema(data: Any, kind: str, source: str) -> None:
    """Raise :class:`InvalidFile` for the most relevant schema violation, if any."""
    if not isinstance(data, dict):
        raise InvalidFile(source, "", f"must be a JSON object (a benchbias {kind} file)")
    if data.get("schema") != _EXPECTED[kind]:
        raise InvalidFile(source, "schema", f"is {data.get('schema')!r}; this benchbias reads {_EXPECTED[kind]!r} {kind} files")
    error = best_match(_VALIDATORS[kind].iter_errors(data))
    if error is not None:
        raise InvalidFile(source, *_describe(error))


def _first_difference(stored: Any, computed: Any, path: str) -> tuple[str, Any, Any] | None:
    if isinstance(computed, dict):
        for key, value in computed.items():
            found = _first_difference(stored.get(key) if isinstance(stored, dict) else None, value, f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(computed, list):
        if not isinstance(stored, list) or len(stored) != len(computed):
            return path, stored, computed
        for i, (a, b) in enumerate(zip(stored, computed)):
            found = _first_difference(a, b, f"{path}[{i}]")
            if found:
                return found
        return None
    if isinstance(computed, float) and isinstance(stored, (int, float)) and not isinstance(stored, bool):
        return None if math.isclose(stored, computed, rel_tol=TOLERANCE, abs_tol=TOLERANCE) else (path, stored, computed)
    return None if stored == computed else (path, stored, computed)


def score_table(data: dict[str, Any], source: str) -> ScoreTable:
    try:
        return ScoreTable.from_json(data["score_table"])
    except ValueError as exc:
        raise InvalidFile(source, "score_table", str(exc)) from None


def check_scores(method: dict[str, Any], where: str, source: str, table: ScoreTable, complete: bool) -> None:
    """Every cell has the same scores, each declared in the score table (all of its cell scores when
    ``complete``: a results file) and within its declared bounds; intervals belong to scores."""
    declared = {s.name for s in table.cell()}
    names = set(method["cells"][0]["scores"])
    for i, cell in enumerate(method["cells"]):
        at = f"{where}.cells[{i}]"
        have = set(cell["scores"])
        unknown, missing = have - declared, (declared if complete else names) - have
        if unknown:
            raise InvalidFile(source, f"{at}.scores.{sorted(unknown)[0]}", "is not a score of the score_table")
        if missing:
            raise InvalidFile(source, f"{at}.scores.{sorted(missing)[0]}", "is missing")
        for name, value in cell["scores"].items():
            if value is not None and not table[name].within_bounds(value):
                raise InvalidFile(source, f"{at}.scores.{name}", f"{value!r} is outside its bounds {list(table[name].bounds)}")
        stray = set(cell.get("ci95", {})) - have
        if stray:
            raise InvalidFile(source, f"{at}.ci95.{sorted(stray)[0]}", "is an interval of no score of this cell")


def check_method(method: dict[str, Any], where: str, source: str, ratios: list[float], seeds: list[int], table: ScoreTable, complete: bool = True) -> None:
    """The cells cover ``ratios`` x ``seeds`` once each, their scores fit the score table, and the
    summaries were computed from them."""
    have = [(c["ratio"], c["seed"]) for c in method["cells"]]
    want = sorted((r, s) for r in ratios for s in seeds)
    if sorted(have) != want:
        extra, missing = set(have) - set(want), set(want) - set(have)
        problem = f"missing (ratio, seed) {sorted(missing)[:3]}" if missing else f"unexpected (ratio, seed) {sorted(extra)[:3]}"
        if len(set(have)) != len(have):
            problem = "a (ratio, seed) cell appears twice"
        raise InvalidFile(source, f"{where}.cells", f"{problem}; expected target fractions {ratios} x seeds {seeds}")
    check_scores(method, where, source, table, complete)
    for name, computed in (("summary", method_summary(method["cells"], table)), ("per_fraction", per_fraction(method["cells"], table))):
        found = _first_difference(method[name], computed, f"{where}.{name}")
        if found:
            path, stored, value = found
            raise InvalidFile(source, path, f"{stored!r} does not match {value!r} computed from the cells (edited by hand?)")


def cell_problem(cell: Any) -> str | None:
    """Why a stored cell file (``cells/<method>/*.json``) cannot be used, or None when it can."""
    error = best_match(_CELL.iter_errors(cell))
    if error is None:
        return None
    where, problem = _describe(error)
    return f"{where or '(top level)'}: {problem}"


def check_results(data: Any, source: str) -> dict[str, Any]:
    check_schema(data, "results", source)
    bench = data["benchmark"]
    if stable_hash(protocol_of(bench["config"])) != bench["protocol_hash"]:
        raise InvalidFile(source, "benchmark.protocol_hash", "does not match the protocol in benchmark.config (edited by hand?)")
    ratios = list(bench["config"].get("domains", {}).get("target_fractions", []))
    seeds = data["provenance"]["seeds"]
    table = score_table(data, source)
    for name, method in data["methods"].items():
        check_method(method, f"methods.{name}", source, ratios, seeds, table)
    for key, suffix in (("ranking", ""), ("ranking_2", "_2")):
        if key not in data:
            continue
        expected = rank({name: m["summary"] for name, m in data["methods"].items()}, suffix, reference_methods(data["methods"]))
        if [r["method"] for r in data[key]] != [r["method"] for r in expected]:
            raise InvalidFile(source, key, "does not follow the ranking rule applied to the summaries (edited by hand?)")
    if "paper_claims" in data:
        check_paper_claims(data, source)
    return data


def _claim_record(section: dict[str, Any]) -> dict[str, Any]:
    """What a paper_claims section must agree on with its recomputation: the numbers and verdicts
    (its sentences may be worded otherwise by another benchbias)."""

    def claims(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: c[k] for k in ("id", "holds", "evaluated", "figures")} for c in rows]

    return {
        "methods": section["methods"],
        "seeds": section["seeds"],
        "holding": section["holding"],
        "claims": claims(section["claims"]),
        "per_seed": [{"seed": row["seed"], "claims": claims(row["claims"])} for row in section["per_seed"]],
    }


def check_paper_claims(data: dict[str, Any], source: str) -> None:
    """The paper_claims section is what :func:`benchbias.scoring.claims_section.section` computes from the cells."""
    computed = claims_section(data)
    if computed is None:
        raise InvalidFile(source, "paper_claims", "is present, but the benchmark does not carry the paper's claims or a baseline is missing (edited by hand?)")
    if data["paper_claims"].get("definition", 1) != computed["definition"]:
        data["paper_claims"] = computed  # an earlier definition's section: derived data, recomputed on read
        return
    found = _first_difference(_claim_record(data["paper_claims"]), _claim_record(computed), "paper_claims")
    if found:
        path, stored, value = found
        raise InvalidFile(source, path, f"{stored!r} does not match {value!r} computed from the cells (edited by hand?)")


def check_leaderboard(data: Any, source: str) -> dict[str, Any]:
    check_schema(data, "leaderboard", source)
    table = score_table(data, source)
    seen: set[tuple[str, str]] = set()
    for i, entry in enumerate(data["entries"]):
        where = f"entries[{i}]"
        for key in ("benchmark", "protocol_hash", "dataset_fingerprint"):
            if entry[key] != data[key]:
                raise InvalidFile(source, f"{where}.{key}", f"{entry[key]!r} differs from the leaderboard's {data[key]!r}")
        if entry["classifier"]["sha256"] != data["judge_sha256"]:
            raise InvalidFile(source, f"{where}.classifier.sha256", f"{entry['classifier']['sha256']!r} differs from the leaderboard's judge_sha256")
        identity = (entry["method"], entry["version"])
        if identity in seen:
            raise InvalidFile(source, f"{where}", f"method {entry['method']!r} version {entry['version']!r} appears twice")
        seen.add(identity)
        for role, sha in entry.get("extra_judges", {}).items():
            if data.get("extra_judges", {}).get(role) != sha["sha256"]:
                raise InvalidFile(source, f"{where}.extra_judges.{role}.sha256", f"{sha['sha256']!r} differs from the leaderboard's extra_judges.{role}")
        check_method(entry, where, source, data["target_fractions"], entry["seeds"], table, complete=False)
    return data


def load_results(path: Path) -> dict[str, Any]:
    return check_results(upgrade(_read(path, "results"), "results", str(path)), str(path))


def load_leaderboard(path: Path) -> dict[str, Any]:
    return check_leaderboard(upgrade(_read(path, "leaderboard"), "leaderboard", str(path)), str(path))


def _read(path: Path, kind: str) -> Any:
    try:
        return read_json(path)
    except FileNotFoundError:
        raise InvalidFile(str(path), "", f"no such {kind} file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidFile(str(path), "", f"cannot be read: {exc}") from None
    except ValueError as exc:  # json.JSONDecodeError
        raise InvalidFile(str(path), "", f"is not valid JSON: {exc}") from None


def kind_of(path: Path) -> str:
    """'results' or 'leaderboard', from the file's ``schema`` field."""
    data = _read(path, "results or leaderboard")
    schema = data.get("schema") if isinstance(data, dict) else None
    for kind, expected in _EXPECTED.items():
        if isinstance(schema, str) and schema.split("/")[0] == expected.split("/")[0]:
            return kind
    raise InvalidFile(str(path), "schema", f"is {schema!r}; expected a benchbias results or leaderboard file")
