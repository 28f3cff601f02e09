"""Labelled axial slices, one row per slice, and a collector that joins many cases' slices in the
memory of the result alone."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from benchbias.foundation.jsonio import write_atomically


@dataclass
class SliceSet:
    """Axial slices, one row per slice. Images are float32 in [0, 1], shape (N, H, W)."""

    source: np.ndarray
    target: np.ndarray
    tumor_mask: np.ndarray
    brain_fraction: np.ndarray
    tumor_fraction: np.ndarray
    is_tumor: np.ndarray
    case_id: np.ndarray
    slice_index: np.ndarray

    def __len__(self) -> int:
        return len(self.is_tumor)

    def take(self, index: np.ndarray) -> SliceSet:
        return SliceSet(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def save(self, path: Path, **extra: np.ndarray) -> None:
        arrays = {**self.arrays(), **extra}
        write_atomically(path, lambda handle: np.savez_compressed(handle, **arrays))

    @classmethod
    def load(cls, path: Path) -> SliceSet:
        with np.load(path, allow_pickle=False) as data:
            return cls(**{f.name: data[f.name] for f in fields(cls)})


def concatenate(parts: Sequence[SliceSet]) -> SliceSet:
    return SliceSet(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(SliceSet)})


class SliceSpill:
    """Collects the slices of many cases: the image-sized arrays go to temporary files as each case
    is read, so joining them needs memory for the result only (not the parts and the result)."""

    SPILLED = ("source", "target", "tumor_mask")

    def __init__(self, folder: Path | None = None) -> None:
        if folder is not None:
            Path(folder).mkdir(parents=True, exist_ok=True)
        self._dir = tempfile.TemporaryDirectory(dir=folder, prefix=".slices-")
        self._files = {name: open(Path(self._dir.name) / name, "wb") for name in self.SPILLED}
        self._kept: dict[str, list[np.ndarray]] = {f.name: [] for f in fields(SliceSet) if f.name not in self.SPILLED}
        self._layout: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}
        self.count = 0

    def add(self, part: SliceSet) -> None:
        for name in self.SPILLED:
            array = getattr(part, name)
            self._layout.setdefault(name, (array.dtype, array.shape[1:]))
            array.tofile(self._files[name])  # always written in C order
        for name, arrays in self._kept.items():
            arrays.append(getattr(part, name))
        self.count += len(part)

    def join(self) -> SliceSet:
        arrays = {name: np.concatenate(parts) for name, parts in self._kept.items()}
        for name, handle in self._files.items():
            handle.close()
            dtype, shape = self._layout[name]
            arrays[name] = np.fromfile(handle.name, dtype=dtype).reshape(self.count, *shape)
            Path(handle.name).unlink()
        self.close()
        return SliceSet(**arrays)

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._dir.cleanup()
