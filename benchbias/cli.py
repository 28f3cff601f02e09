"""The ``benchbias`` command line."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

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
    run.add_argument("--submit", action="store_true", help="merge the results into leaderboards/<benchmark>.json/.md")
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
    show.add_argument("benchmark", nargs="?", default=DEFAULT_BENCHMARK)
    return parser


def cmd_run(args: argparse.Namespace) -> int:
    from benchbias import leaderboard
    from benchbias.config import find_benchmark, load_benchmark
    from benchbias.plugins import load_registry
    from benchbias.results import ranked_table, ratio_table
    from benchbias.runner import Run, RunOptions

    if args.threads:
        torch.set_num_threads(args.threads)
    bench = load_benchmark(find_benchmark(args.benchmark))
    registry = load_registry(args.plugin_dir)
    out = args.out or Path("benchbias-runs") / bench.name
    run = Run(
        bench,
        registry,
        RunOptions(out=out, device=args.device, methods=tuple(args.methods), data_path=args.data, amp=not args.no_amp, progress=not args.no_progress),
    )
    results = run.execute()
    prov = results["provenance"]
    print(f"\nbenchmark {bench.name}: {prov['cells_run']} cells run, {prov['cells_reused']} reused, wall time {prov['wall_time_s']:.1f} s on {prov['device']}")
    print(f"classifier {results['classifier']['name']}: holdout accuracy {results['classifier']['holdout_accuracy']:.3f} on real {bench.dataset.target}")
    for name, method in results["methods"].items():
        print(f"\n{name} ({'paired' if method['paired'] else 'unpaired'})\n{ratio_table(method)}")
    print(f"\n{ranked_table(results)}\n\nresults: {out / 'results.json'}\nreport:  {out / 'report.html'}")
    if args.submit:
        path = leaderboard.submit(results)
        print(f"leaderboard updated: {path} and {path.with_suffix('.md')}")
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

    board = leaderboard.load(args.benchmark)
    if board is None:
        print(f"benchbias: error: no leaderboard for '{args.benchmark}' in {leaderboard.leaderboard_dir()}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(leaderboard.render(board))
    return 0


def main(argv: list[str] | None = None) -> int:
    from benchbias.config import ConfigError
    from benchbias.data.slices import DataError
    from benchbias.leaderboard import LeaderboardError
    from benchbias.plugins import PluginError
    from benchbias.protocol import ProtocolError

    args = build_parser().parse_args(argv)
    handlers = {"run": cmd_run, "plugins": cmd_plugins}
    if args.command == "data":
        handler = {"synth": cmd_synth, "prepare": cmd_prepare}[args.data_command]
    elif args.command == "leaderboard":
        handler = cmd_leaderboard_show
    else:
        handler = handlers[args.command]
    try:
        return handler(args)
    except (ConfigError, DataError, PluginError, ProtocolError, LeaderboardError) as exc:
        print(f"benchbias: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("benchbias: interrupted; finished cells are kept and a rerun resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
