"""``benchbias leaderboard show|submit|render|validate``: a benchmark's leaderboard files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchbias.cli.common import DEFAULT_BENCHMARK, EXIT_BAD_INPUT


def add_parsers(sub: argparse._SubParsersAction) -> None:
    board = sub.add_parser("leaderboard", help="leaderboards").add_subparsers(dest="board_command", required=True)
    show = board.add_parser("show", help="print a benchmark's ranked leaderboard")
    show.add_argument("benchmark", nargs="?", default=DEFAULT_BENCHMARK, help="benchmark name or leaderboard JSON path")
    show.add_argument("--markdown", action="store_true", help="print the whole Markdown page instead of the table")
    show.set_defaults(handler=cmd_show)
    submit = board.add_parser("submit", help="validate a results.json and add its methods to the benchmark's leaderboard")
    submit.add_argument("results", type=Path, help="a results.json written by benchbias run")
    submit.add_argument("--replace", action="store_true", help="overwrite entries of the same method and version")
    submit.add_argument("--methods", nargs="+", default=[], metavar="NAME", help="submit only these methods")
    submit.set_defaults(handler=cmd_submit)
    render = board.add_parser("render", help="regenerate <benchmark>.md and .png from its validated JSON")
    render.add_argument("benchmark", nargs="?", default=DEFAULT_BENCHMARK, help="benchmark name or leaderboard JSON path")
    render.set_defaults(handler=cmd_render)
    validate = board.add_parser("validate", help="validate leaderboard files; check that each .md matches its .json and the .png exists")
    validate.add_argument("files", nargs="*", type=Path, help="leaderboard JSON files (default: every one in the leaderboard folder)")
    validate.set_defaults(handler=cmd_validate)


def cmd_show(args: argparse.Namespace) -> int:
    from benchbias import leaderboard
    from benchbias.records.validation import load_leaderboard

    path = leaderboard.leaderboard_path(args.benchmark)
    if not path.is_file():
        print(f"benchbias: error: no leaderboard {path}", file=sys.stderr)
        return EXIT_BAD_INPUT
    board = load_leaderboard(path)
    if args.markdown:
        print(leaderboard.render(board), end="")
    else:
        print(f"{board['benchmark']}: {len(board['entries'])} entries; {board['ranking_rule']}\n")
        print(leaderboard.ranked_rows(board).text())
        if any(len(e["seeds"]) > 1 for e in board["entries"]):
            print(f"\n{leaderboard.SEEDS_NOTE}")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from benchbias import leaderboard
    from benchbias.records.validation import load_results

    results = load_results(args.results)
    path, done = leaderboard.submit(results, str(args.results), replace=args.replace, methods=tuple(args.methods))
    print(f"{path}: {'; '.join(done)}; {path.with_suffix('.md')} regenerated")
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from benchbias import leaderboard
    from benchbias.records.validation import load_leaderboard

    path = leaderboard.leaderboard_path(args.benchmark)
    leaderboard.write(load_leaderboard(path), path)
    print(f"{path.with_suffix('.md')} and {path.with_suffix('.png').name} regenerated from {path.name}")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from benchbias import leaderboard
    from benchbias.records.validation import InvalidFile, load_leaderboard

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
