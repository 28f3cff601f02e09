"""Verified and self-reported entries of a leaderboard.

An entry is **verified** when it carries a ``verification`` record signed by a key in
``maintainers.pub`` beside the leaderboard files: ``benchbias leaderboard verify`` re-ran a random
sample of its cells from the plugin it names, in the OS sandbox, on the public and on the
maintainers' private holdout, and they agreed (:mod:`benchbias.verification`). Every other entry is
**self-reported**: its submitter's run, checked for consistency but not re-run. Boards rank the two
apart. A signature that does not hold makes the whole file invalid.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchbias.records.signatures import VERIFICATION, signature_problem, trusted_keys
from benchbias.records.validation import InvalidFile


def is_verified(entry: dict[str, Any]) -> bool:
    return VERIFICATION in entry


def check_signatures(board: dict[str, Any], path: Path) -> None:
    """Every verified entry's signature holds under the keys beside ``path``."""
    if not any(is_verified(e) for e in board["entries"]):
        return
    keys = trusted_keys(Path(path).parent)
    for i, entry in enumerate(board["entries"]):
        problem = signature_problem(entry, keys)
        if problem:
            raise InvalidFile(str(path), f"entries[{i}].verification", f"entry {entry['method']!r} ({entry['version']}): {problem}")


def verified_line(entry: dict[str, Any]) -> str:
    """How an entry's line on the board says what it is."""
    record = entry.get(VERIFICATION)
    if record is None:
        return "self-reported (not re-run by the maintainers)"
    cells = ", ".join(f"r={c['ratio']:g} seed {c['seed']}" for c in record["sampled_cells"])
    return f"verified {record['verified_at'][:10]} (season `{record['season']}`, key `{record['key_id']}`; re-ran {cells})"
