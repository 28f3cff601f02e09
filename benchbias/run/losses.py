"""Training losses kept with each cell (``loss_curve``), so that a bad training run is visible after
the fact: in the cell's file, in ``results.json`` and as a figure in the report.

Translators report their losses through :meth:`TrainContext.report` (a
:class:`~benchbias.nets.translation.NetworkTranslator` reports the dict its ``training_step``
returns, each model of a program its own values). :class:`RecordingContext` keeps, per loss term,
the sum and count over each of :data:`CURVE_POINTS` equal stretches of the steps, as tensors on the
training device: no step waits for the device to read a value; the means are read once, at the end.
Recording changes nothing that is trained, so cells' keys do not include it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from benchbias.foundation.contract import TrainContext

CURVE_POINTS = 20  # points per loss term: means over this many equal stretches of the steps
DIGITS = 5  # significant digits kept of each mean (a curve is for looking at; results stay small)


@dataclass
class RecordingContext(TrainContext):
    """A :class:`TrainContext` that also keeps the loss curve of the model it trains."""

    _sums: dict[str, list[Any]] = field(default_factory=dict, init=False)
    _counts: dict[str, list[int]] = field(default_factory=dict, init=False)
    _reports: int = field(default=0, init=False)

    @property
    def points(self) -> int:
        return max(1, min(CURVE_POINTS, self.steps))

    def stretch(self, step: int) -> int:
        """The stretch of the steps that step ``step`` (0-based) falls in."""
        return min(self.points - 1, step * self.points // max(1, self.steps))

    def report(self, losses: Mapping[str, torch.Tensor]) -> None:
        super().report(losses)
        at = self.stretch(self._reports)
        self._reports += 1
        for name, value in losses.items():
            value = value.detach().float().mean() if isinstance(value, torch.Tensor) else torch.tensor(float(value))
            sums = self._sums.setdefault(name, [None] * self.points)
            counts = self._counts.setdefault(name, [0] * self.points)
            sums[at] = value if sums[at] is None else sums[at] + value
            counts[at] += 1

    def curve(self) -> dict[str, Any] | None:
        """``{"steps": [last step of each stretch], "terms": {name: [mean of the stretch, or null]}}``;
        None when nothing was reported. Means that are not finite (a diverged loss) are null; the
        others keep :data:`DIGITS` significant digits."""
        if not self._sums:
            return None
        ends = [max(i for i in range(self.steps) if self.stretch(i) == at) + 1 for at in range(self.points)]
        present = [(name, at) for name, sums in self._sums.items() for at, total in enumerate(sums) if total is not None]
        device = self._sums[present[0][0]][present[0][1]].device
        values = torch.stack([self._sums[name][at].to(device) for name, at in present]).tolist()  # one read of the device
        terms: dict[str, list[float | None]] = {name: [None] * self.points for name in self._sums}
        for (name, at), total in zip(present, values):
            mean = total / self._counts[name][at]
            terms[name][at] = float(f"{mean:.{DIGITS}g}") if math.isfinite(mean) else None
        return {"steps": ends, "terms": terms}
