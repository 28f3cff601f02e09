"""The image scale: slices are stored, scored and judged on [0, 1]; networks see [-1, 1].

A benchmark's ``slices.network_max`` narrows what the translators see to ``[-1, -1 + 2 *
network_max]`` (the paper's runs: 100/255); the judges always read ``[-1, 1]`` (``network_max`` 1).
Every conversion between the two goes through :func:`to_network` and :func:`to_unit`, so a
translator's output, a judge's input and a canary's painting are read on one scale.
"""

from __future__ import annotations

import numpy as np
import torch


def unit_images(images: np.ndarray) -> torch.Tensor:
    """Slices ``(N, H, W)`` on [0, 1] as a tensor ``(N, 1, H, W)``, their values as they are."""
    return torch.from_numpy(np.ascontiguousarray(images))[:, None]


def to_network(unit: torch.Tensor, network_max: float = 1.0) -> torch.Tensor:
    """Images on [0, 1] -> on [-1, -1 + 2 * network_max] ([-1, 1] by default)."""
    return unit * (2.0 * network_max) - 1.0


def to_unit(images: torch.Tensor, network_max: float = 1.0, clamp: bool = False) -> torch.Tensor:
    """The inverse of :func:`to_network`; ``clamp``: values a network put outside the range are
    clamped to [0, 1] (a translation, before it is stored, scored and judged)."""
    unit = (images + 1.0) / (2.0 * network_max)
    return unit.clamp(0.0, 1.0) if clamp else unit
