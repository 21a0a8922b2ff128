"""Quantile sketch of a large sorted sample: a few thousand exact CDF knots, interpolated linearly.

Knots sit at order statistics on a probability grid that is uniform in the bulk and geometric in
the tails (where a CDF bends most), and each knot stores the *exact* count of reference values
below and at it, so the sketch's CDF is exact at every knot and only interpolates between them.
Repeated values become vertical steps. Rounded data (all values on a lattice of step ``delta``) is
treated as each value spread over its lattice cell, which keeps the error small even when more
distinct values exist than knots.
"""

from __future__ import annotations

import math

import numpy as np

from retrigger.stats.samples import FloatArray, IntArray

TAIL_RATE = 0.04
"""Relative spacing of the tail grid: the probability mass between two tail knots is at most
4% of the mass beyond them, so interpolation error stays small where densities fall off."""


def probability_grid(n: int, size: int) -> FloatArray:
    """About ``size`` probabilities in (0, 1): uniform in the bulk, geometric towards 0 and 1."""
    width = 1.0 / size
    for _ in range(4):
        start = min(width / TAIL_RATE, 0.25)
        tail = max(0, math.ceil(math.log(max(start * n, 1.0)) / -math.log1p(-TAIL_RATE)))
        width = (1.0 - 2.0 * start) / max(size - 2 * tail, 16)
    tails = start * (1.0 - TAIL_RATE) ** np.arange(1, tail + 1)
    tails = tails[tails * n >= 1.0]
    bulk = np.arange(start, 1.0 - start + width / 2, width)
    return np.unique(np.concatenate((tails, bulk, 1.0 - tails)))


def lattice_step(distinct: FloatArray) -> float:
    """Step of the lattice holding every distinct value (e.g. 0.01 for 2-decimal data), or 0."""
    if distinct.size < 3:
        return 0.0
    gaps = np.diff(distinct)
    step = float(gaps.min())
    span = float(distinct[-1] - distinct[0])
    if step <= 0.0 or span / step > 1e9:
        return 0.0
    ratio = gaps / step
    if np.abs(ratio - np.rint(ratio)).max() > 1e-6:
        return 0.0
    return span / float(np.rint(ratio).sum())


def sketch_knots(
    sorted_values: FloatArray, size: int, *, step: float
) -> tuple[FloatArray, FloatArray]:
    """Knot positions and cumulative counts summarising ``sorted_values`` in ~``size`` knots."""
    n = sorted_values.size
    grid = probability_grid(n, size // 2 if step > 0 else size)
    ranks = np.unique(np.concatenate(([0, n - 1], np.floor(grid * n).astype(np.int64))))
    picked = np.unique(sorted_values[np.clip(ranks, 0, n - 1)])
    below: IntArray = np.searchsorted(sorted_values, picked, side="left")
    upto: IntArray = np.searchsorted(sorted_values, picked, side="right")
    if step > 0:
        z = np.column_stack((picked - step / 2, picked + step / 2)).ravel()
        g = np.column_stack((below, upto)).ravel().astype(np.float64)
        keep = np.concatenate(([True], (np.diff(z) > 0) | (np.diff(g) > 0)))
        return z[keep], g[keep]
    single = (upto - below) == 1
    reps = np.where(single, 1, 2)
    z = np.repeat(picked, reps)
    starts = np.cumsum(reps) - reps
    g = np.empty(z.size, dtype=np.float64)
    g[starts] = np.where(single, below + 0.5, below)
    atoms = starts[~single] + 1
    g[atoms] = upto[~single]
    return z, g
