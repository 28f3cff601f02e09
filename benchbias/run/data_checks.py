"""What ``benchbias plan`` checks the prepared data against: the counts the code a benchmark reproduces
printed for its data set (``reference:``), and whether each case's header puts the kept half where the
paper's notebook cut it."""

from __future__ import annotations

from benchbias.foundation.config import Benchmark
from benchbias.report.tables import text_table


def half_line(half: str, not_as_stored: tuple[str, ...] | None) -> str:
    """Whether every case's kept half is the upper half of its file's first axis, as the paper's
    notebook cut it (x >= 128 of the stored array), by each case's header (None: not checked)."""
    if not_as_stored is None:
        return f"half: the patient's {half} half; headers not checked (slices prepared before the check: prepare them again to check)"
    if not not_as_stored:
        return f"half: the patient's {half} half; in every case the upper half of the file's first axis as stored (headers checked)"
    shown = ", ".join(not_as_stored[:5]) + (", ..." if len(not_as_stored) > 5 else "")
    return (
        f"WARNING: half: in {len(not_as_stored)} case(s) the patient's {half} half is not the upper half of the file's first axis as stored "
        f"(other headers than the paper's data): {shown}"
    )


REFERENCE_LABELS = {
    "slices": "slices kept",
    "tumor_slices": "tumor slices",
    "train_tumor": "train: tumor slices",
    "train_healthy": "train: healthy slices",
    "holdout_tumor": "holdout subjects: tumor slices",
    "holdout_healthy": "holdout subjects: healthy slices",
    "holdout_set": "holdout set",
    "domain_slices": "target domain slices per fraction",
    "judge_slices": "judge's training slices",
    "source_max": "source maximum",
    "target_max": "target maximum",
}


def reference_lines(bench: Benchmark, ours: dict) -> list[str]:
    """The reference counts of ``bench`` beside this data's, each marked as matching or not."""
    rows = [["", "reference", "this data", ""]]
    differ = []
    for key, label in REFERENCE_LABELS.items():
        expected = getattr(bench.reference, key)
        if expected in (None, ()) or key not in ours:
            continue
        mine = ours[key]
        if mine is None:
            rows.append([label, _shown(expected), "-", "not computed with this normalization"])
            continue
        same = tuple(mine) == tuple(expected) if key == "domain_slices" else abs(float(mine) - float(expected)) <= 1e-3 * max(1.0, abs(float(expected)))
        rows.append([label, _shown(expected), _shown(mine), "matches" if same else "DIFFERS"])
        if not same:
            differ.append(label)
    verdict = (
        "this preparation matches every reference count"
        if not differ
        else f"WARNING: this preparation differs from the reference in: {', '.join(differ)} (another data version, half, label map or file set?)"
    )
    return ["reference counts (what the reproduced code printed, or re-running its sampling gave):", *text_table(rows).splitlines(), verdict]


def _shown(value) -> str:
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)
