"""A run's cells and their files.

A cell is one (method, seed, target fraction) of a sweep (:class:`CellJob`); the unit of work is a
:class:`Program`, the cells whose models train as one program (one cell, or the fractions of one
method and seed that train together). A finished cell is ``cells/<method>/r<fraction>-s<seed>.json``
(its scores and fingerprint) beside a folder of arrays: ``translations.npz``, every holdout
translation (float16), and ``judged.npz``, the judges' reading of them. The arrays are written first,
so a cell file on disk means a finished cell; on a rerun a cell whose fingerprint matches is reused.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchbias.foundation.jsonio import read_json, write_atomically, write_json
from benchbias.records.validation import cell_problem
from benchbias.run.options import warn

TRANSLATIONS = "translations.npz"  # every holdout translation of a cell (float16), written when it is computed
JUDGED = "judged.npz"  # the judges' reading of them, written when they are scored
FILE_ARRAYS = {TRANSLATIONS: {"translated", "out_of_range"}, JUDGED: {"p_tumor", "example_index", "example_translated"}}


@dataclass(frozen=True)
class CellJob:
    """One (method, seed, target fraction) cell to compute."""

    method: str
    seed: int
    ratio: float
    key: str  # the cell's fingerprint: what its translations depend on
    label: str
    scoring_key: str = ""  # what its scores depend on beyond them (judges, metrics)


@dataclass(frozen=True)
class Program:
    """Cells whose models train as one program: a single cell, or several target fractions of one
    method and seed (``training.models_per_program``)."""

    jobs: tuple[CellJob, ...]

    @property
    def method(self) -> str:
        return self.jobs[0].method

    @property
    def seed(self) -> int:
        return self.jobs[0].seed

    @property
    def label(self) -> str:
        if len(self.jobs) == 1:
            return self.jobs[0].label
        ratios = [job.ratio for job in self.jobs]
        return f"{self.method} r={min(ratios):.2f}-{max(ratios):.2f} seed={self.seed} ({len(ratios)} models)"


@dataclass(frozen=True)
class CellOutcome:
    cell: dict[str, Any]
    files: dict[str, bytes]  # the cell's array files (translations.npz, judged.npz) by name


def cell_path(out: Path, job: CellJob) -> Path:
    """The cell's JSON file in the run folder ``out``; its arrays are in the folder of that name."""
    return Path(out) / "cells" / job.method / f"r{job.ratio:.3f}-s{job.seed}.json"


def stored_cell(path: Path, key: str) -> dict[str, Any] | None:
    """The finished cell stored at ``path`` when it is intact and its fingerprint is ``key``, else
    None (compute it). benchbias wrote these files itself, so one that cannot be read is stale, not
    fatal: one warning line naming it, and the cell is computed again."""
    if not path.is_file():
        return None
    try:
        cell = read_json(path)
        problem = cell_problem(cell)
    except (OSError, ValueError) as exc:
        cell, problem = None, f"cannot be read ({type(exc).__name__})"
    if problem is None and cell.get("fingerprint") != key:
        return None  # stale: the protocol, plugin or compute settings changed
    if problem is None:
        problem = npz_problem(path.with_suffix("") / TRANSLATIONS)
    if problem is None and "translations_sha256" in cell and translations_sha256(stored_translations(path)[0]) != cell["translations_sha256"]:
        problem = f"{TRANSLATIONS} is not the translations the cell was scored on (translations_sha256 differs)"
    if problem is not None:
        warn(f"{path}: {problem}; computing this cell again")
        return None
    return cell


def npz_problem(path: Path) -> str | None:
    """Why a cell's ``translations.npz`` or ``judged.npz`` cannot be used, or None when it can."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = FILE_ARRAYS[path.name] - set(data.files)
            if missing:
                return f"{path.name} lacks {', '.join(sorted(missing))}"
            for name in data.files:
                data[name]  # decompress every array: a truncated member fails here
    except FileNotFoundError:
        return f"{path.name} is missing"
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        return f"{path.name} cannot be read ({type(exc).__name__})"
    return None


def npz_bytes(**arrays: np.ndarray) -> bytes:
    handle = io.BytesIO()
    np.savez_compressed(handle, **arrays)
    return handle.getvalue()


def store_cell(path: Path, outcome: CellOutcome) -> None:
    """The cell's arrays first, then its JSON: a cell file on disk means a finished cell."""
    for name, content in outcome.files.items():
        write_atomically(path.with_suffix("") / name, lambda handle, content=content: handle.write(content))
    write_json(path, outcome.cell)


def translations_sha256(translated: np.ndarray) -> str:
    """The identity of a cell's translations (float16 ``(N, H, W)``), recorded in the cell: its dtype,
    shape and bytes. A stored ``translations.npz`` must match it to be reused or rescored."""
    digest = hashlib.sha256(f"{translated.dtype.str} {translated.shape}".encode())
    digest.update(np.ascontiguousarray(translated).tobytes())
    return digest.hexdigest()


def stored_translations(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A stored cell's translations (float16, ``(N, H, W)``) and their out-of-range shares."""
    with np.load(path.with_suffix("") / TRANSLATIONS, allow_pickle=False) as data:
        return data["translated"], data["out_of_range"]
