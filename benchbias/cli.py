"""The ``benchbias`` command line."""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from benchbias import __version__

DEFAULT_BENCHMARK = "synthetic-quick"
EXIT_BAD_INPUT = 2


def _plugin_dir_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--plugin-dir", action="append", type=Path, default=[], metavar="DIR",
        help="extra folder of plugin files (repeatable; also $BENCHBIAS_PLUGIN_DIRS)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchbias", description="Do medical image translators hallucinate or erase disease?")
    parser.add_argument("--version", action="version", version=f"benchbias {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a benchmark (default: synthetic-quick)")
    run.add_argument("benchmark", nargs="?", default=DEFAULT_BENCHMARK, help="benchmark name or YAML path")
    run.add_argument("--methods", nargs="+", default=[], metavar="NAME", help="run only these methods of the benchmark")
    run.add_argument("--out", type=Path, help="results folder (default: benchbias-runs/<benchmark>); a rerun resumes it")
    run.add_argument("--data", metavar="PATH", help="data folder, overriding dataset.path")
    run.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
    run.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    run.add_argument("--no-amp", action="store_true", help="disable bfloat16 autocast on CUDA")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument(
        "--translator", action="append", default=[], metavar="PLUGIN",
        help="also run this translator plugin as a method (repeatable); without --methods only these run",
    )
    run.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE",
        help="a parameter of the --translator plugins (repeatable; VALUE is read as YAML, e.g. filters=8)",
    )
    run.add_argument(
        "--seeds", type=int, nargs="+", metavar="N",
        help="translator seeds (replicates) instead of the benchmark's; the protocol hash does not change",
    )
    run.add_argument("--submit", action="store_true", help="add the results to leaderboards/<benchmark>.json/.md")
    run.add_argument("--replace", action="store_true", help="with --submit: overwrite entries of the same method and version")
    _plugin_dir_option(run)

    plugins = sub.add_parser("plugins", help="list translators, classifiers and data layouts with their origin")
    _plugin_dir_option(plugins)

    data = sub.add_parser("data", help="data utilities").add_subparsers(dest="data_command", required=True)
    synth = data.add_parser("synth", help="write a seeded synthetic data set in the BraTS 2018-21 layout")
    synth.add_argument("out", type=Path)
    synth.add_argument("--subjects", type=int, default=60)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--shape", type=int, nargs=3, default=[64, 64, 40], metavar=("X", "Y", "Z"))
    from benchbias.data.prepare import add_arguments as prepare_arguments

    prepare_arguments(data.add_parser("prepare", help="read a data folder once through MONAI into the prepared-slice cache"))

    board = sub.add_parser("leaderboard", help="leaderboards").add_subparsers(dest="board_command", required=True)
    show = board.add_parser("show", help="print a benchmark's ranked leaderboard")
    show.add_argument("benchmark", nargs="?", default=DEFAULT_BENCHMARK, help="benchmark name or leaderboard JSON path")
    show.add_argument("--markdown", action="store_true", help="print the whole Markdown page instead of the table")
    submit = board.add_parser("submit", help="validate a results.json and add its methods to the benchmark's leaderboard")
    submit.add_argument("results", type=Path, help="a results.json written by benchbias run")
    submit.add_argument("--replace", action="store_true", help="overwrite entries of the same method and version")
    submit.add_argument("--methods", nargs="+", default=[], metavar="NAME", help="submit only these methods")
    render = board.add_parser("render", help="regenerate <benchmark>.md and .png from its validated JSON")
    render.add_argument("benchmark", nargs="?", default=DEFAULT_BENCHMARK, help="benchmark name or leaderboard JSON path")
    validate = board.add_parser("validate", help="validate leaderboard files; check that each .md matches its .json and the .png exists")
    validate.add_argument("files", nargs="*", type=Path, help="leaderboard JSON files (default: every one in the leaderboard folder)")

    compare = sub.add_parser("compare", help="per-fraction and summary differences between two results/leaderboard files")
    compare.add_argument("a", type=Path)
    compare.add_argument("b", type=Path)

    check = sub.add_parser("check", help="exit 1 when a method scored worse than its leaderboard entry beyond tolerance")
    check.add_argument("results", type=Path, help="a results.json (or leaderboard) to check")
    check.add_argument("--against", type=Path, required=True, metavar="LEADERBOARD", help="e.g. leaderboards/synthetic-quick.json")
    check.add_argument("--method", action="append", default=[], metavar="NAME", help="check only this method (repeatable)")
    check.add_argument(
        "--tolerance", action="append", default=[], metavar="SCORE=VALUE",
        help="allowed increase of a score, absolute (bias=0.1) or relative to the reference (mae=5%%); repeatable",
    )

    schema = sub.add_parser("schema", help="print the JSON Schema of results or leaderboard files")
    schema.add_argument("kind", choices=["results", "leaderboard"])
    return parser


def parse_params(items: list[str]) -> dict:
    import yaml

    from benchbias.config import ConfigError

    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--param {item}: expected KEY=VALUE")
        params[key] = yaml.safe_load(value)
    return params


def cmd_run(args: argparse.Namespace) -> int:
    import torch

    from benchbias import leaderboard
    from benchbias.config import find_benchmark, load_benchmark, with_translators
    from benchbias.config import ConfigError
    from benchbias.plugins import load_registry
    from benchbias.results import ranked_table, ratio_table
    from benchbias.runner import Run, RunOptions

    if args.threads:
        torch.set_num_threads(args.threads)
    bench = load_benchmark(find_benchmark(args.benchmark))
    if args.param and not args.translator:
        raise ConfigError("--param: applies to --translator plugins, and none was given")
    bench = with_translators(bench, args.translator, parse_params(args.param))
    if args.seeds:
        if len(set(args.seeds)) != len(args.seeds) or min(args.seeds) < 0:
            raise ConfigError(f"--seeds {' '.join(map(str, args.seeds))}: must be distinct non-negative integers")
        bench = dataclasses.replace(bench, seeds=tuple(args.seeds))
    methods = tuple(args.methods) or tuple(args.translator)
    registry = load_registry(args.plugin_dir)
    out = args.out or Path("benchbias-runs") / bench.name
    run = Run(
        bench,
        registry,
        RunOptions(out=out, device=args.device, methods=methods, data_path=args.data, amp=not args.no_amp, progress=not args.no_progress),
    )
    results = run.execute()
    prov = results["provenance"]
    print(f"\nbenchmark {bench.name}: {prov['cells_run']} cells run, {prov['cells_reused']} reused, wall time {prov['wall_time_s']:.1f} s on {prov['device']}")
    print(f"classifier {results['classifier']['name']}: holdout accuracy {results['classifier']['holdout_accuracy']:.3f} on real {bench.dataset.target}")
    for name, method in results["methods"].items():
        print(f"\n{name} ({'paired' if method['paired'] else 'unpaired'})\n{ratio_table(method)}")
    print(f"\n{ranked_table(results)}\n\nresults: {out / 'results.json'}\nreport:  {out / 'report.html'}")
    if args.submit:
        path, done = leaderboard.submit(results, str(out / "results.json"), replace=args.replace)
        print(f"leaderboard {path} and {path.with_suffix('.md')}: {'; '.join(done)}")
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from benchbias.plugins import load_registry

    registry = load_registry(args.plugin_dir)
    for kind in ("translator", "classifier", "dataset"):
        print(f"{kind}s:")
        for name in registry.names(kind):
            entry = registry.get(kind, name)
            training = ("paired" if entry.cls.paired else "unpaired") + "  " if kind == "translator" else ""
            print(f"  {name:<16} {training}{entry.origin}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from benchbias.data.synthetic import SynthSpec, write_dataset

    if args.subjects < 1 or min(args.shape) < 16:
        print("benchbias: error: --subjects must be >= 1 and every --shape entry >= 16", file=sys.stderr)
        return EXIT_BAD_INPUT
    paths = write_dataset(args.out, SynthSpec(subjects=args.subjects, seed=args.seed, shape=tuple(args.shape)), progress=True)
    print(f"wrote {len(paths)} subjects to {args.out}")
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from benchbias.data.prepare import command

    return command(args)


def cmd_leaderboard_show(args: argparse.Namespace) -> int:
    from benchbias import leaderboard
    from benchbias.validation import load_leaderboard

    path = leaderboard.leaderboard_path(args.benchmark)
    if not path.is_file():
        print(f"benchbias: error: no leaderboard {path}", file=sys.stderr)
        return EXIT_BAD_INPUT
    board = load_leaderboard(path)
    if args.markdown:
        print(leaderboard.render(board), end="")
    else:
        print(f"{board['benchmark']}: {len(board['entries'])} entries; {board['ranking_rule']}\n")
        print(leaderboard.text_table(leaderboard.ranked_rows(board)))
    return 0


def cmd_leaderboard_submit(args: argparse.Namespace) -> int:
    from benchbias import leaderboard
    from benchbias.validation import load_results

    results = load_results(args.results)
    path, done = leaderboard.submit(results, str(args.results), replace=args.replace, methods=tuple(args.methods))
    print(f"{path}: {'; '.join(done)}; {path.with_suffix('.md')} regenerated")
    return 0


def cmd_leaderboard_render(args: argparse.Namespace) -> int:
    from benchbias import leaderboard
    from benchbias.validation import load_leaderboard

    path = leaderboard.leaderboard_path(args.benchmark)
    leaderboard.write(load_leaderboard(path), path)
    print(f"{path.with_suffix('.md')} and {path.with_suffix('.png').name} regenerated from {path.name}")
    return 0


def cmd_leaderboard_validate(args: argparse.Namespace) -> int:
    from benchbias import leaderboard
    from benchbias.validation import InvalidFile, load_leaderboard

    files = args.files or sorted(leaderboard.leaderboard_dir().glob("*.json"))
    if not files:
        print(f"benchbias: error: no leaderboard files in {leaderboard.leaderboard_dir()}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for path in files:
        board = load_leaderboard(path)
        markdown, figure = path.with_suffix(".md"), path.with_suffix(".png")
        if not markdown.is_file() or markdown.read_text() != leaderboard.render(board):
            raise InvalidFile(str(markdown), "", f"is not the rendering of {path.name} (edited by hand, or stale); run: benchbias leaderboard render {path}")
        if not figure.is_file() or not figure.read_bytes().startswith(b"\x89PNG"):
            raise InvalidFile(str(figure), "", f"is missing or not a PNG; run: benchbias leaderboard render {path}")
        print(f"{path}: valid, {len(board['entries'])} entries; {markdown.name} matches, {figure.name} present")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from benchbias.compare import compare, load_scored

    print(compare(load_scored(args.a), load_scored(args.b)))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from benchbias.compare import check, load_scored, parse_tolerances
    from benchbias.leaderboard import text_table

    tolerances = parse_tolerances(args.tolerance)
    result = check(load_scored(args.results), load_scored(args.against), tolerances, args.method or None)
    print(text_table(result.rows))
    if result.passed:
        print(f"\ncheck passed: no score got worse beyond its tolerance against {args.against}")
        return 0
    print(f"\ncheck FAILED: worse than {args.against}: {', '.join(result.worse)}")
    return 1


def cmd_schema(args: argparse.Namespace) -> int:
    from benchbias.jsonio import dumps
    from benchbias.schemas import SCHEMAS

    print(dumps(SCHEMAS[args.kind]), end="")
    return 0


def bad_input_errors() -> tuple[type[Exception], ...]:
    """The errors that mean "your input is wrong": one line, exit 2. Imported lazily (the data and
    plugin modules pull in torch and MONAI, which leaderboard commands do not need)."""
    from benchbias.compare import CheckError
    from benchbias.config import ConfigError
    from benchbias.leaderboard import LeaderboardError
    from benchbias.validation import InvalidFile

    errors: list[type[Exception]] = [ConfigError, LeaderboardError, InvalidFile, CheckError]
    for module, name in (("benchbias.data.slices", "DataError"), ("benchbias.plugins", "PluginError"), ("benchbias.protocol", "ProtocolError"), ("benchbias.runner", "TranslatorOutputError")):
        if module in sys.modules:
            errors.append(getattr(sys.modules[module], name))
    return tuple(errors)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {"run": cmd_run, "plugins": cmd_plugins, "compare": cmd_compare, "check": cmd_check, "schema": cmd_schema}
    if args.command == "data":
        handler = {"synth": cmd_synth, "prepare": cmd_prepare}[args.data_command]
    elif args.command == "leaderboard":
        handler = {"show": cmd_leaderboard_show, "submit": cmd_leaderboard_submit, "validate": cmd_leaderboard_validate, "render": cmd_leaderboard_render}[args.board_command]
    else:
        handler = handlers[args.command]
    try:
        return handler(args)
    except bad_input_errors() as exc:
        print(f"benchbias: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("benchbias: interrupted; finished cells are kept and a rerun resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
