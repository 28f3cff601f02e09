"""Composition sensitivity as dependence: how far a rate moves with the training target's tumor
fraction, whatever the shape of that movement.

A least-squares slope only sees a straight line: a rate that rises to r = 0.5 and falls back (a
bump) has slope 0, yet the fraction decides it as much as a steady rise does. Here the rate is
averaged at each target fraction (seeds pooled), and its spread across the fractions is measured
after removing what binomial noise alone would spread it by:

    excess = var_r(p_r) - (K - 1) / K * mean_r(p (1 - p) / n_r)
    dependence = sqrt(max(excess, 0)) / sd(r)

``p_r`` is the rate at fraction r, ``K`` the number of fractions, ``p`` the rate pooled over every
fraction (the rate if the fraction did not matter), ``n_r`` the slices it counts at r (all seeds);
``var_r`` and ``sd(r)`` are population variance and standard deviation over the K fractions.
Dividing by ``sd(r)`` puts the score in the slope's units: a straight line ``p_r = a + b r`` without
noise scores ``|b|``, so the scores of steady trends did not change meaning. A rate that is equal at
every fraction (a data-independent translator) scores exactly 0, and so does any spread within
binomial noise. With no slice counts (cells from files that lack them) nothing is subtracted.

Only numpy: leaderboards and ``check`` use this without importing torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def by_fraction(ratios: Sequence[float], rates: Sequence[float | None], counts: Sequence[float | None]) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The distinct fractions, the rate at each (the mean over its cells), and the slices counted at
    each (summed over its cells; None when any cell lacks its count)."""
    kept = [(x, y, n) for x, y, n in zip(ratios, rates, counts) if y is not None]
    fractions = sorted({x for x, _, _ in kept})
    mean = np.array([np.mean([y for x, y, _ in kept if x == f]) for f in fractions], dtype=float)
    if any(n is None for _, _, n in kept):
        return np.array(fractions, dtype=float), mean, None
    n = np.array([sum(c for x, _, c in kept if x == f) for f in fractions], dtype=float)
    return np.array(fractions, dtype=float), mean, n


def dependence(ratios: Sequence[float], rates: Sequence[float | None], counts: Sequence[float | None]) -> float | None:
    """The dependence score of one rate (module docstring); None with fewer than two fractions."""
    fractions, p, n = by_fraction(ratios, rates, counts)
    if len(fractions) < 2:
        return None
    if np.ptp(p) == 0:
        return 0.0
    pooled = float(p.mean())
    noise = 0.0 if n is None or (n <= 0).any() else float(np.mean(pooled * (1.0 - pooled) / n))
    excess = float(np.var(p)) - (len(p) - 1) / len(p) * noise
    return float(np.sqrt(excess) / np.std(fractions)) if excess > 0 else 0.0


def worst_fraction(ratios: Sequence[float], rates: Sequence[float | None]) -> float | None:
    """The largest of the per-fraction rates (seeds pooled): what a user training at the worst target
    composition gets, where the sweep mean averages it away."""
    fractions, p, _ = by_fraction(ratios, rates, [None] * len(ratios))
    return float(p.max()) if len(fractions) else None
