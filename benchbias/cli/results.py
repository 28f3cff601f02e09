"""``benchbias claims``, ``compare``, ``check`` and ``schema``: reading results and leaderboard files."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parsers(sub: argparse._SubParsersAction) -> None:
    claims = sub.add_parser("claims", help="check the paper's Figure 2 claims on a results.json, run folder or leaderboard (exit 1 if one fails)")
    claims.add_argument("path", type=Path, help="a results.json, a run folder or a leaderboard JSON file")
    claims.set_defaults(handler=cmd_claims)

    compare = sub.add_parser(
        "compare",
        help="per-fraction and summary differences between two results/leaderboard files, or two methods (FILE:METHOD)",
        description="Every method both files hold, side by side (B - A); or one method of each: "
        "benchbias compare base/results.json:l1 mine/results.json:unet (a name on one side only is looked for in both files; "
        "the same file may be given twice).",
    )
    compare.add_argument("a", metavar="A", help="a results.json, run folder or leaderboard, optionally :METHOD")
    compare.add_argument("b", metavar="B", help="the same, for the other side")
    compare.set_defaults(handler=cmd_compare)

    rescore = sub.add_parser(
        "rescore",
        help="score a run folder's stored translations again with benchbias's own judges and metrics (no plugin code) "
        "and compare every score with its results.json (exit 1 if one differs)",
    )
    rescore.add_argument("folder", type=Path, help="a run folder (results.json, cells/ with their translations)")
    rescore.add_argument("--benchmark", metavar="NAME_OR_YAML", help="the benchmark it was made with (default: the one results.json names)")
    rescore.add_argument("--data", metavar="PATH", help="data folder, overriding dataset.path")
    rescore.set_defaults(handler=cmd_rescore)

    check = sub.add_parser("check", help="exit 1 when a method scored worse than its leaderboard entry beyond tolerance")
    check.add_argument("results", type=Path, help="a results.json (or leaderboard) to check")
    check.add_argument("--against", type=Path, required=True, metavar="LEADERBOARD", help="e.g. leaderboards/synthetic-quick.json")
    check.add_argument("--method", action="append", default=[], metavar="NAME", help="check only this method (repeatable)")
    check.add_argument(
        "--tolerance", action="append", default=[], metavar="SCORE=VALUE",
        help="allowed worsening of a sweep score, absolute (hallucination=0.1) or relative to the reference (mae=5%%); repeatable",
    )  # fmt: skip
    check.set_defaults(handler=cmd_check)


def add_schema_parser(sub: argparse._SubParsersAction) -> None:
    schema = sub.add_parser("schema", help="print the JSON Schema of results or leaderboard files")
    schema.add_argument("kind", choices=["results", "leaderboard"])
    schema.set_defaults(handler=cmd_schema)


def load(path: Path) -> tuple[Path, str, dict[str, Any]]:
    """A results file, a run folder (its results.json) or a leaderboard, validated: (path, kind, data)."""
    from benchbias.records.validation import kind_of, load_leaderboard, load_results

    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    kind = kind_of(path)
    return path, kind, load_results(path) if kind == "results" else load_leaderboard(path)


def cmd_claims(args: argparse.Namespace) -> int:
    """0 when every claim holds (seeds pooled), 1 when one does not; a bad file raises (one line, exit 2)."""
    lines, passed = claims_report(*load(args.path))
    print("\n".join(lines))
    return 0 if passed else 1


def claims_report(path: Path, kind: str, data: dict[str, Any]) -> tuple[list[str], bool]:
    """The lines ``benchbias claims`` prints of ``data`` (a validated results file or leaderboard read
    from ``path``), and whether every claim holds with the seeds pooled."""
    from benchbias.scoring.claims import BASELINES, evaluate, evaluate_per_seed, holding, summary_line
    from benchbias.scoring.claims_section import baselines_of, carries_claims

    found = baselines_of(data)
    name = data["benchmark"] if kind == "leaderboard" else data["benchmark"]["name"]
    stand_ins = ", ".join(f"{plugin}: {found.names[plugin]}" for plugin in BASELINES if plugin in found.names) or "none of them"
    seeds = ", ".join(map(str, found.seeds)) or "none"
    lines = [f"{path}: {kind} of {name}; baselines {stand_ins}; seeds {seeds}"]
    if not carries_claims(data):
        lines.append(f"note: benchmark {name} does not carry the paper's claims (no 'paper_claims: true'); evaluated as asked")
    pooled = evaluate(found.cells, found.table)
    lines += ["", f"pooled over seeds {seeds}:", *(f"  {c.detail}" for c in pooled)]
    per_seed = evaluate_per_seed(found.cells, found.table)
    for seed, claims in per_seed.items():
        lines += ["", f"seed {seed}: {holding(claims)} of {len(claims)} hold", *(f"  {c.detail}" for c in claims)]
    lines += ["", summary_line(pooled) + (f", seeds {seeds} pooled" if len(found.seeds) > 1 else "")]
    return lines, all(c.holds for c in pooled)


def cmd_compare(args: argparse.Namespace) -> int:
    from benchbias.leaderboard.compare import compare, load_scored, split_method

    (path_a, method_a), (path_b, method_b) = split_method(args.a), split_method(args.b)
    a, b = (load_scored(p / "results.json" if p.is_dir() else p) for p in (path_a, path_b))
    print(compare(a, b, method_a, method_b))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from benchbias.leaderboard.compare import check, load_scored, parse_tolerances
    from benchbias.report.tables import text_table

    reference = load_scored(args.against)
    tolerances = parse_tolerances(args.tolerance, reference.table)
    result = check(load_scored(args.results), reference, tolerances, args.method or None)
    print(text_table(result.rows))
    if result.passed:
        print(f"\ncheck passed: no score got worse beyond its tolerance against {args.against}")
        return 0
    print(f"\ncheck FAILED: worse than {args.against}: {', '.join(result.worse)}")
    return 1


def cmd_rescore(args: argparse.Namespace) -> int:
    from benchbias.foundation.benchmark_files import find_benchmark, load_benchmark
    from benchbias.foundation.config import ConfigError
    from benchbias.foundation.jsonio import read_json
    from benchbias.run.rescoring import rescore_folder

    if not (args.folder / "results.json").is_file():
        raise ConfigError(f"{args.folder}: no results.json (give a run folder)")
    name = args.benchmark or read_json(args.folder / "results.json").get("benchmark", {}).get("name", "")
    bench = load_benchmark(find_benchmark(name))
    report = rescore_folder(args.folder, bench, args.data)
    for line in report.differences:
        print(line)
    if report.identical:
        print(f"rescore: {report.cells} cells scored again with benchbias's own judges and metrics: every score as results.json says")
        return 0
    print(f"rescore FAILED: {len(report.differences)} difference(s) between {args.folder / 'results.json'} and its rescored translations")
    return 1


def cmd_schema(args: argparse.Namespace) -> int:
    from benchbias.foundation.jsonio import dumps
    from benchbias.records.schemas import SCHEMAS

    print(dumps(SCHEMAS[args.kind]), end="")
    return 0
