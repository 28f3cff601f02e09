"""The plugin contract: what a translator, a classifier, a metric and a dataset layout must provide.

The runner owns data loading, splits, seeding, device choice, checkpoint folders and progress; a
plugin receives all of that through :class:`TrainContext` and only trains and predicts.
Images cross the contract as float32 tensors of shape ``(N, 1, H, W)`` scaled to ``[-1, 1]`` (H need
not equal W; a benchmark's ``slices.network_max`` narrows the translators' range to
``[-1, -1 + 2 * network_max]``; the judge always reads ``[-1, 1]``). Plugins import these names from
:mod:`benchbias.api`.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from benchbias.foundation.errors import BenchbiasError
from benchbias.foundation.scoretable import Score


class ParamError(BenchbiasError, ValueError):
    """A plugin parameter is unknown or has a bad value."""


@dataclass(frozen=True)
class Param:
    """One tunable parameter of a plugin, with its default (which also fixes its type)."""

    default: Any
    help: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] | None = None

    def validate(self, owner: str, name: str, value: Any) -> Any:
        expected = type(self.default)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not expected:
            raise ParamError(f"{owner}: parameter '{name}' must be {expected.__name__}, got {type(value).__name__} {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ParamError(f"{owner}: parameter '{name}' must be one of {list(self.choices)}, got {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise ParamError(f"{owner}: parameter '{name}' must be >= {self.minimum}, got {value!r}")
        if self.maximum is not None and value > self.maximum:
            raise ParamError(f"{owner}: parameter '{name}' must be <= {self.maximum}, got {value!r}")
        return value


def resolve_params(owner: str, declared: Mapping[str, Param], given: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults overridden by ``given``; unknown names and bad values raise :class:`ParamError`."""
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise ParamError(f"{owner}: unknown parameter '{unknown[0]}' (known: {', '.join(sorted(declared)) or 'none'})")
    resolved = {name: spec.default for name, spec in declared.items()}
    for name, value in given.items():
        resolved[name] = declared[name].validate(owner, name, value)
    return resolved


class Configurable:
    """Shared by plugins: a registry name, a description and declared parameters."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    params: ClassVar[dict[str, Param]] = {}

    def __init__(self, **params: Any) -> None:
        self.hparams = resolve_params(self.name, self.params, params)


# --------------------------------------------------------------------------------------------
# What the runner hands a plugin
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairedSlices:
    """Aligned source/target slices: ``source[i]`` and ``target[i]`` are the same anatomy."""

    source: torch.Tensor
    target: torch.Tensor


@dataclass(frozen=True)
class UnpairedDomains:
    """Two independent sets of slices; nothing links ``source[i]`` to ``target[i]``."""

    source: torch.Tensor
    target: torch.Tensor


@dataclass
class TrainContext:
    """Everything the runner decides for one training job."""

    seed: int
    device: torch.device
    steps: int
    workdir: Path
    amp: bool = True
    log_every: int = 25
    on_step: Callable[[int, dict[str, float] | None], None] = lambda step, losses: None
    generator: torch.Generator = field(init=False)
    _pending: dict[str, torch.Tensor] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.generator = torch.Generator().manual_seed(self.seed)

    def loop(self) -> Iterator[int]:
        """Yield step numbers ``0 .. steps-1`` and drive the progress bar."""
        for step in range(self.steps):
            yield step
            losses = None
            # Reading a loss value forces a host/device sync: do it only every `log_every` steps.
            if self._pending and (step % self.log_every == 0 or step == self.steps - 1):
                values = torch.stack([v.detach().float() for v in self._pending.values()]).tolist()  # one sync
                losses = dict(zip(self._pending, values))
            self.on_step(step, losses)

    def report(self, losses: Mapping[str, torch.Tensor]) -> None:
        """Record this step's losses (tensors; read lazily for the progress bar)."""
        self._pending = dict(losses)

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision on CUDA when enabled; a no-op on CPU."""
        if self.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def batches(self, n: int, batch_size: int, serial: bool = False) -> Iterator[torch.Tensor]:
        """Endless seeded index batches over ``n`` items, reshuffled each epoch (``serial``: in their
        order, every epoch)."""
        while True:
            order = torch.arange(n) if serial else torch.randperm(n, generator=self.generator)
            for start in range(0, n - batch_size + 1, batch_size):
                yield order[start : start + batch_size]
            if n < batch_size:
                yield order


# --------------------------------------------------------------------------------------------
# The plugin base classes
# --------------------------------------------------------------------------------------------


class Translator(Configurable, ABC):
    """Translates source-modality slices (e.g. FLAIR) into the target modality (e.g. T1)."""

    paired: ClassVar[bool]
    """True: trains on :class:`PairedSlices`; False: on :class:`UnpairedDomains`."""

    @abstractmethod
    def fit(self, data: PairedSlices | UnpairedDomains, ctx: TrainContext) -> None:
        """Train for exactly ``ctx.steps`` steps (iterate ``ctx.loop()``)."""

    @abstractmethod
    def translate(self, source: torch.Tensor) -> torch.Tensor:
        """Translate a batch ``(N, 1, H, W)`` in [-1, 1] (or the benchmark's narrower range); return a
        ``torch.Tensor`` of the same shape. Values outside that range are clamped for scoring, and their
        share is recorded per cell."""


class Classifier(Configurable, ABC):
    """The impartial judge: says whether a target-modality slice shows a tumor."""

    @abstractmethod
    def fit(self, images: torch.Tensor, labels: torch.Tensor, ctx: TrainContext) -> None:
        """Train on real target slices ``(N, 1, H, W)`` with labels ``(N,)`` (1 = tumor)."""

    @abstractmethod
    def predict_proba(self, images: torch.Tensor) -> torch.Tensor:
        """Tumor probability per image, shape ``(N,)``, on the CPU."""

    @abstractmethod
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Weights, so the runner can store a trained classifier and reuse it on a rerun."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Restore weights produced by :meth:`state_dict` (after construction with the same params)."""


@dataclass(frozen=True)
class Evidence:
    """What a metric sees of one cell: the translations of the holdout slices and what to judge them by.

    Images are ``(N, 1, H, W)`` float32 tensors on the [0, 1] slice scale (translations clamped to it),
    masks bool tensors of that shape; per-slice arrays have length N. Judges' outputs are None when the
    benchmark has no such judge."""

    source: torch.Tensor
    translated: torch.Tensor
    real: torch.Tensor  # the real target slice of each holdout source
    tumor_mask: torch.Tensor  # ground truth, from the data set's labels
    source_is_tumor: np.ndarray
    brain_fraction: np.ndarray  # share of each slice's pixels inside the brain
    out_of_range: np.ndarray  # share of each translation's raw pixels outside the range the translator saw
    p_tumor: np.ndarray  # the judge's tumor probability on each translation
    p_tumor_real: np.ndarray  # ... and on each real target
    second_p_tumor: np.ndarray | None = None  # the second judge's, when the benchmark has one
    second_p_tumor_real: np.ndarray | None = None
    segmented: torch.Tensor | None = None  # the segmentation judge's tumor mask on each translation
    segmented_real: torch.Tensor | None = None  # ... and on each real target


class Metric(ABC):
    """Scores of one cell, computed from its :class:`Evidence`.

    ``scores`` declares every score :meth:`compute` returns (name, label, kind, bounds, digits, how it
    is averaged, shown and checked). ``needs`` names the Evidence fields it requires beyond the
    judge's (``second_p_tumor``, ``segmented``): a benchmark without them does not run the metric."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    scores: ClassVar[tuple[Score, ...]] = ()
    needs: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def compute(self, evidence: Evidence) -> Mapping[str, np.ndarray | float | None]:
        """One entry per declared score: a length-N array of per-slice values (NaN where a slice does
        not count; the score is their mean and gets a bootstrap interval over slices) or one number."""


@dataclass(frozen=True)
class Case:
    """One subject: a file (or 4-D file plus channel) per modality and a label map."""

    case_id: str
    images: dict[str, Path | tuple[Path, int]]
    label: Path


class DatasetLayout(ABC):
    """A folder layout of MRI cases (BraTS 2018-21, BRATS2013, MSD Task01, ...)."""

    name: ClassVar[str]
    description: ClassVar[str] = ""

    @classmethod
    @abstractmethod
    def matches(cls, root: Path) -> bool:
        """True when ``root`` looks like this layout (used for auto-detection)."""

    @abstractmethod
    def cases(self, root: Path, modalities: tuple[str, ...]) -> list[Case]:
        """List the cases under ``root`` with the files of the requested modalities."""

    @abstractmethod
    def tumor_mask(self, label: np.ndarray) -> np.ndarray:
        """Boolean tumor mask from a label map (the layout's labelling rule)."""

    def brain_mask(self, label: np.ndarray, images: Mapping[str, np.ndarray]) -> np.ndarray:
        """Boolean brain mask; by default every voxel non-zero in any modality (skull-stripped data)."""
        mask = np.zeros(label.shape, dtype=bool)
        for image in images.values():
            mask |= image > 0
        return mask
