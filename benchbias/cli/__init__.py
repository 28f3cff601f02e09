"""The ``benchbias`` command line: :func:`build_parser` assembles the command families, one module
each (``run``, ``selftest`` and ``plan``; ``plugins``; ``data``; ``leaderboard``; ``claims``,
``compare``, ``check`` and ``schema``; ``judge``), and :func:`main` runs the chosen command.

Every user-facing problem (:class:`~benchbias.foundation.errors.BenchbiasError`) is printed as one
line and exits with code 2.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys

from benchbias import __version__
from benchbias.cli import data, judge, leaderboard, plugins, results, run
from benchbias.cli.common import EXIT_BAD_INPUT
from benchbias.foundation.errors import BenchbiasError
from benchbias.foundation.jsonio import FULL_DISK, OutOfSpace

__all__ = ["build_parser", "main"]

NOT_WRITABLE = (errno.EACCES, errno.EPERM, errno.EROFS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchbias", description="Do medical image translators hallucinate or erase disease?")
    parser.add_argument("--version", action="version", version=f"benchbias {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    run.add_parsers(sub)
    plugins.add_parsers(sub)
    data.add_parsers(sub)
    leaderboard.add_parsers(sub)
    results.add_parsers(sub)
    judge.add_parsers(sub)
    results.add_schema_parser(sub)
    return parser


def one_line(message: str) -> str:
    """The message with line breaks and other control characters escaped (a key or value quoted
    from a bad file may hold them), so that an error is always one line."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)


def after_full_disk(args: argparse.Namespace) -> str:
    if args.command in ("run", "selftest"):
        return "finished cells are kept; free some space and rerun the same command to resume"
    return "files are replaced atomically, so the old ones are intact; free some space and try again"


def after_not_writable(args: argparse.Namespace) -> str:
    if args.command in ("run", "selftest"):
        return "finished cells are kept; make it writable and rerun the same command to resume"
    return "make it writable and try again"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except OutOfSpace as exc:
        print(f"benchbias: error: {exc.strerror}; {after_full_disk(args)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BenchbiasError as exc:
        print(f"benchbias: error: {one_line(str(exc))}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as exc:
        if exc.errno in NOT_WRITABLE:  # a folder made read-only under a run, a file another user owns
            where = f"{exc.filename}: " if exc.filename else ""
            print(f"benchbias: error: {where}cannot write: {os.strerror(exc.errno).lower()}; {after_not_writable(args)}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if exc.errno not in FULL_DISK:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"benchbias: error: {where}cannot write: {os.strerror(exc.errno).lower()}; {after_full_disk(args)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("benchbias: interrupted; finished cells are kept and a rerun resumes", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
