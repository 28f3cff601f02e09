"""The prepared-slice cache: every case of a data folder read once (:func:`prepare_slices`), its slices
stored under a cache key, and the data set's fingerprint.

Two hashes, two jobs. The **cache key** says where prepared slices are on this machine: every file's
absolute path, size and mtime, the layout, modalities and slice options (``slices-<key>.npz``); a
later call with the same files and options reuses the file, and a stale cache of the same folder and
options is replaced. The **fingerprint** identifies the data wherever it lies (paths relative to the
folder, sizes, the cases read and left out, layout, modalities, slice options): results, judges and
leaderboards record it, and cells depend on it.
"""

from __future__ import annotations

import json
import os
import sys
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from benchbias.data.cases import divide_by, read_case, scan_cases
from benchbias.data.errors import DataError
from benchbias.data.slice_set import SliceSet, SliceSpill
from benchbias.data.transforms import HALF_AS_STORED
from benchbias.foundation.config import SliceConfig, slice_options, stable_hash
from benchbias.foundation.contract import Case, DatasetLayout

SLICE_CACHE_VERSION = 2
SKIP_BAD_HINT = "; to leave unusable cases out, prepare once with: benchbias data prepare {root} --benchmark BENCHMARK --skip-bad"


def _case_files(cases: Sequence[Case], source: str, target: str) -> Iterator[tuple[str, Path, int | None, os.stat_result]]:
    """(case id, path, channel, stat) of the source, target and label file of every case."""
    for case in cases:
        for entry in (case.images[source], case.images[target], case.label):
            path, channel = (entry[0], entry[1]) if isinstance(entry, tuple) else (entry, None)
            path = Path(path)
            try:
                stat = path.stat()
            except OSError:
                raise DataError(f"case {case.case_id}: {path}: missing file") from None
            yield case.case_id, path, channel, stat


def _what_is_read(layout: DatasetLayout, source: str, target: str, options: SliceConfig) -> dict[str, Any]:
    return {"version": SLICE_CACHE_VERSION, "layout": layout.name, "source": source, "target": target, "options": slice_options(options)}


def cache_key(
    cases: Sequence[Case],
    layout: DatasetLayout,
    source: str,
    target: str,
    options: SliceConfig,
    problems: Sequence[tuple[str, str]] = (),
) -> str:
    """Where these slices are cached on this machine: every file's absolute path (and channel), size
    and mtime, the cases found unusable while listing, the layout, modalities and all slice options."""
    files = [[case_id, str(path.resolve()), channel, stat.st_size, stat.st_mtime_ns] for case_id, path, channel, stat in _case_files(cases, source, target)]
    return stable_hash({**_what_is_read(layout, source, target, options), "files": files, "unusable": sorted(map(list, problems))})


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:  # a layout may point outside the folder (links): keep the name
        return path.name


def data_fingerprint(
    root: Path,
    cases: Sequence[Case],
    read: Sequence[str],
    skipped: Sequence[tuple[str, str]],
    layout: DatasetLayout,
    source: str,
    target: str,
    options: SliceConfig,
) -> str:
    """Identifies the data wherever it lies (unlike :func:`cache_key`): the layout, modalities, slice
    options, and each case read with its files' paths relative to ``root`` and sizes, plus the cases
    left out. Two copies of BraTS on two machines give the same fingerprint."""
    kept = [case for case in cases if case.case_id in set(read)]
    files = sorted([case_id, _relative(path, root), channel, stat.st_size] for case_id, path, channel, stat in _case_files(kept, source, target))
    return stable_hash({**_what_is_read(layout, source, target, options), "files": files, "left_out": sorted(case for case, _ in skipped)})


@dataclass
class PreparedSlices:
    """The outcome of :func:`prepare_slices`."""

    slices: SliceSet
    cache_key: str
    cache: Path | None  # the cache file (None when not caching)
    status: str  # "reused", "built", "rebuilt" (a stale cache of the same folder replaced) or "uncached"
    cases: tuple[str, ...]  # the cases whose slices are here
    skipped: tuple[tuple[str, str], ...]  # (case id, reason) of every unusable case left out
    meta: dict
    fingerprint: str = ""  # :func:`data_fingerprint`

    @property
    def summary(self) -> dict:
        tumor = int(self.slices.is_tumor.sum())
        return {"cases": len(self.cases), "skipped": len(self.skipped), "slices": len(self.slices), "tumor": tumor, "healthy": len(self.slices) - tumor}


def cache_meta(path: Path) -> dict | None:
    """The ``meta`` record of a cache file, or None when it has none or cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "meta" not in data.files:
                return None
            return json.loads(str(data["meta"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def load_cache(path: Path) -> tuple[SliceSet, dict] | None:
    """A cache file's slices and meta, or None when it is unreadable (then it is rebuilt)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            slices = SliceSet(**{f.name: data[f.name] for f in fields(SliceSet)})
            meta = json.loads(str(data["meta"])) if "meta" in data.files else {}
        return slices, meta
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None


def prepare_slices(
    root: Path,
    layout: DatasetLayout,
    source: str,
    target: str,
    options: SliceConfig,
    cache_dir: Path | None = None,
    progress: bool = True,
    skip_bad: bool = False,
) -> PreparedSlices:
    """Every kept slice of every case under ``root``: reuses a cache whose key matches, else reads
    the cases (one at a time) and writes ``cache_dir/slices-<cache key>.npz``.

    An unusable case raises :class:`DataError` naming the case and file, unless ``skip_bad``: then
    it is left out and listed (in the result and in the cache). A cache built with ``skip_bad`` is
    reused by later calls without it (the files and their problems are unchanged)."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: data folder does not exist")
    if not root.is_dir():
        raise DataError(f"{root}: is not a folder")
    cases, problems = scan_cases(layout, root, (source, target))
    if not cases and not problems:
        raise DataError(f"{root}: no cases found for layout '{layout.name}'")
    key = cache_key(cases, layout, source, target, options, problems)
    cached = Path(cache_dir) / f"slices-{key[:16]}.npz" if cache_dir else None
    unreadable = False
    if cached is not None and cached.is_file():
        unreadable = True  # unless it loads below
        loaded = load_cache(cached)
        if loaded is not None and loaded[1].get("cache_key") == key:
            slices, meta = loaded
            skipped = tuple((str(c), str(r)) for c, r in meta.get("skipped", []))
            read = tuple(meta.get("cases", []))
            fingerprint = data_fingerprint(root, cases, read, skipped, layout, source, target, options)
            return PreparedSlices(slices, key, cached, "reused", read, skipped, meta, fingerprint)
    if problems and not skip_bad:
        raise DataError(f"{problems[0][1]}{SKIP_BAD_HINT.format(root=root)}")

    started = time.perf_counter()
    maxima, read, skipped = [], [], list(problems)
    spill = SliceSpill(cache_dir)
    try:
        for case in tqdm(cases, desc="reading cases", unit="case", leave=False, disable=not (progress and sys.stderr.isatty())):
            try:
                part, peaks = read_case(case, layout, source, target, options)
            except DataError as exc:
                if not skip_bad:
                    raise DataError(f"{exc}{SKIP_BAD_HINT.format(root=root)}") from None
                skipped.append((case.case_id, str(exc)))
                continue
            spill.add(part)
            maxima.append(peaks)
            read.append(case.case_id)
        skipped.sort()
        if not read:
            raise DataError(f"{root}: every case is unusable ({len(skipped)} skipped; first: {skipped[0][1]})")
        slices = spill.join()
    finally:
        spill.close()
    dataset_max = None
    if options.normalization == "dataset_max":
        dataset_max = {m: max(p[m] for p in maxima) for m in (source, target)}
        divide_by(slices, dataset_max[source], dataset_max[target])
    # Cases whose kept half is not the upper half of their first axis as stored (their headers differ).
    off_half = [case for case, peaks in zip(read, maxima) if HALF_AS_STORED in peaks]
    meta = {
        "half_not_as_stored": off_half,
        "cache_key": key,
        "version": SLICE_CACHE_VERSION,
        "root": str(root.resolve()),
        "layout": layout.name,
        "source": source,
        "target": target,
        "options": slice_options(options),
        "cases": read,
        "skipped": [list(s) for s in skipped],
        "dataset_max": dataset_max,
        "seconds": round(time.perf_counter() - started, 3),
    }
    status = "uncached"
    if cached is not None:
        status = "rebuilt" if remove_stale(Path(cache_dir), meta) or unreadable else "built"
        slices.save(cached, meta=np.array(json.dumps(meta)))
    fingerprint = data_fingerprint(root, cases, read, skipped, layout, source, target, options)
    return PreparedSlices(slices, key, cached, status, tuple(read), tuple(skipped), meta, fingerprint)


def remove_stale(cache_dir: Path, meta: dict) -> int:
    """Delete caches of the same folder, layout, modalities and options under another key (their
    files changed since); returns how many."""
    removed = 0
    same = ("root", "layout", "source", "target", "options")
    for path in cache_dir.glob("slices-*.npz"):
        other = cache_meta(path)
        if other and other.get("cache_key") != meta["cache_key"] and all(other.get(k) == meta[k] for k in same):
            path.unlink(missing_ok=True)
            removed += 1
    return removed
