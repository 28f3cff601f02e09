"""``benchbias leaderboard show|submit|render|validate|verify|keygen``: a benchmark's leaderboard files,
and the maintainers' verification of its entries."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from benchbias.cli.common import DEFAULT_BENCHMARK, EXIT_BAD_INPUT, plugin_dir_option


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
    verify = board.add_parser(
        "verify",
        help="re-run sampled cells of an entry from its pinned plugin in the sandbox, on the public and the private holdout; sign it when they agree",
        description=(
            "Maintainers' command. The private holdout comes from the secret in $BENCHBIAS_HOLDOUT_SECRET (synthetic benchmarks) "
            "or --private-data; the signing key from --key or $BENCHBIAS_SIGNING_KEY. Without a key the entry is checked, not signed."
        ),
    )
    verify.add_argument("method", nargs="?", help="the entry's method name")
    verify.add_argument("--unverified", action="store_true", help="verify every self-reported entry of the board (a submission's CI)")
    verify.add_argument("--benchmark", default=DEFAULT_BENCHMARK, help="benchmark name or leaderboard JSON path (default: %(default)s)")
    verify.add_argument("--version", help="the entry's version, when the method has several")
    verify.add_argument("--cells", type=int, default=2, metavar="N", help="cells to re-run, drawn at random (default: %(default)s)")
    verify.add_argument("--all", action="store_true", help="re-run every cell of the entry")
    verify.add_argument("--key", type=Path, help="the maintainers' Ed25519 private key (PEM; default: $BENCHBIAS_SIGNING_KEY)")
    verify.add_argument("--data", help="the public data folder, overriding the benchmark's dataset.path")
    verify.add_argument("--private-data", help="a folder of withheld subjects: the private holdout of a benchmark on real data")
    verify.add_argument("--benchmark-file", help="the benchmark's YAML file, when it is not the installed one of that name")
    plugin_dir_option(verify)
    verify.set_defaults(handler=cmd_verify)
    keygen = board.add_parser("keygen", help="write a new Ed25519 signing key pair (PRIVATE.pem and PRIVATE.pub) for leaderboard verify")
    keygen.add_argument("private", type=Path, help="where to write the private key (PEM); the public key goes beside it as .pub")
    keygen.set_defaults(handler=cmd_keygen)


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
        verified = sum(1 for e in board["entries"] if "verification" in e)
        print(f"{board['benchmark']}: {len(board['entries'])} entries, {verified} verified; {board['ranking_rule']}\n")
        print("verified entries:\n" + (leaderboard.ranked_rows(board, True).text() if verified else "none yet"))
        if verified < len(board["entries"]):
            print("\nself-reported entries (not re-run by the maintainers; ranked among themselves):\n" + leaderboard.ranked_rows(board, False).text())
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
    from benchbias.leaderboard.verified import check_signatures
    from benchbias.records.validation import InvalidFile, load_leaderboard

    files = args.files or sorted(leaderboard.leaderboard_dir().glob("*.json"))
    if not files:
        print(f"benchbias: error: no leaderboard files in {leaderboard.leaderboard_dir()}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for path in files:
        board = load_leaderboard(path)
        check_signatures(board, path)
        markdown, figure = path.with_suffix(".md"), path.with_suffix(".png")
        if not markdown.is_file() or markdown.read_text() != leaderboard.render(board):
            raise InvalidFile(str(markdown), "", f"is not the rendering of {path.name} (edited by hand, or stale); run: benchbias leaderboard render {path}")
        if not figure.is_file() or not figure.read_bytes().startswith(b"\x89PNG"):
            raise InvalidFile(str(figure), "", f"is missing or not a PNG; run: benchbias leaderboard render {path}")
        print(f"{path}: valid, {len(board['entries'])} entries; {markdown.name} matches, {figure.name} present")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from benchbias import leaderboard
    from benchbias.foundation.benchmark_files import find_benchmark, load_benchmark
    from benchbias.foundation.errors import BenchbiasError
    from benchbias.records.signatures import load_private_key
    from benchbias.records.validation import load_leaderboard
    from benchbias.verification import read_secret

    if bool(args.method) == args.unverified:
        print("benchbias: error: leaderboard verify: name one METHOD, or give --unverified", file=sys.stderr)
        return EXIT_BAD_INPUT
    secret = read_secret()
    path = leaderboard.leaderboard_path(args.benchmark)
    if not path.is_file():
        print(f"benchbias: error: no leaderboard {path}", file=sys.stderr)
        return EXIT_BAD_INPUT
    key_file = args.key or (Path(os.environ["BENCHBIAS_SIGNING_KEY"]) if os.environ.get("BENCHBIAS_SIGNING_KEY") else None)
    private_key = load_private_key(key_file) if key_file else None  # a bad key fails now, not after the re-runs
    board = load_leaderboard(path)
    bench = load_benchmark(find_benchmark(args.benchmark_file or board["benchmark"]))
    if not args.unverified:
        return _verify_one(args, path, board, bench, secret, private_key, args.method, args.version)
    todo = [(e["method"], e["version"]) for e in board["entries"] if "verification" not in e]
    print(f"{path.name}: {len(todo)} self-reported entr{'y' if len(todo) == 1 else 'ies'} to verify")
    failed = 0
    for method, version in todo:
        try:
            failed += _verify_one(args, path, load_leaderboard(path), bench, secret, private_key, method, version) != 0
        except BenchbiasError as exc:  # this entry cannot be verified here; the others still are
            print(f"{method} ({version}): not verified: {exc}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


def _verify_one(args: argparse.Namespace, path: Path, board: dict, bench, secret: str, private_key, method: str, version: str | None) -> int:
    from benchbias import leaderboard
    from benchbias.records.signatures import sign
    from benchbias.verification import verify_entry

    def say(line: str) -> None:
        print(f"verify: {line}", file=sys.stderr, flush=True)

    result = verify_entry(
        board, method, bench, secret, version=version, cells=None if args.all else args.cells,
        plugin_dirs=args.plugin_dir, data_path=args.data, private_data=args.private_data, say=say,
    )  # fmt: skip
    print(f"{result.method} ({result.version}), season {result.season}: {len(result.cells)} cell(s) re-run in {result.seconds:.0f} s")
    for c in result.cells:
        shown = "; ".join(f"{k} {_f(c.claimed[k])} claimed, {_f(c.public[k])} public, {_f(c.private[k])} private" for k in c.claimed)
        print(f"  r={c.ratio:g} seed={c.seed}: {shown}")
    if not result.passed:
        print(f"{result.method} ({result.version}): not verified: {len(result.problems)} score(s) disagree:", file=sys.stderr)
        for line in result.problems:
            print(f"  {line}", file=sys.stderr)
        return 1
    if private_key is None:
        print(f"{result.method}: verified; not signed (no --key or $BENCHBIAS_SIGNING_KEY)")
        return 0
    entry = next(e for e in board["entries"] if e["method"] == result.method and e["version"] == result.version)
    leaderboard.add_verification(path, result.method, result.version, sign(entry, result.record(), private_key))
    print(f"{result.method}: verified and signed; {path} and its .md updated")
    return 0


def _f(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def cmd_keygen(args: argparse.Namespace) -> int:
    from benchbias.records.signatures import new_key_pair

    public_file = args.private.with_suffix(".pub")
    for target in (args.private, public_file):
        if target.exists():
            print(f"benchbias: error: {target} exists; not overwritten", file=sys.stderr)
            return EXIT_BAD_INPUT
    private_pem, public_pem = new_key_pair()
    args.private.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(args.private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(private_pem)
    public_file.write_bytes(public_pem)
    print(f"{args.private}: private key (keep it secret); {public_file}: public key (append it to leaderboards/maintainers.pub)")
    return 0
