"""Numeric reference profile: the reference distribution of one feature, in one of three forms.

``sorted``  every reference value, ascending (exact; capped, see ``ProfileOptions.max_values``);
``counts``  distinct values with their counts (exact; smaller when values repeat, as rounded
            data do);
``sketch``  knots of a piecewise-linear CDF (compact, approximate; also what a client-sent
            histogram or quantile list becomes).

Every form answers the same questions in O(log size) per point, so tests never re-sort the
reference: ``cdf_counts`` (how many reference values are <= or < x), ``integral`` (the integral
of the CDF up to x, for Wasserstein), ``quantile`` and ``binned`` (quantile bins for PSI, JS,
Hellinger).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import ClassVar, Literal, NamedTuple

import numpy as np

from retrigger.stats.samples import FeatureKind, FloatArray, IntArray

Side = Literal["left", "right"]

_MERGE_MIN = 1_000
"""Counting stored values at or below many sorted points merges the two sorted arrays (one
stable sort that finds two runs) instead of binary-searching each point, when there are at
least this many points..."""
_MERGE_RATIO = 4
"""...and the profile stores at most this many times as many values (else searching wins)."""


class CoarseIndex(NamedTuple):
    """Every ``step``-th stored value of a step-form profile, with weight bounds between them.

    ``grid[k] = values[(k + 1) step - 1]`` for k < K = len(values) // step. A point x with
    exactly k grid values at or below it (k = 0..K) has a reference weight at or below it,
    and also strictly below it, of at most ``high[k]``; at or below it, at least ``low[k]``.
    """

    step: int
    grid: FloatArray
    low: FloatArray
    high: FloatArray


class NumericForm(StrEnum):
    """Storage form of a numeric profile."""

    SORTED = "sorted"
    COUNTS = "counts"
    SKETCH = "sketch"


@dataclass(frozen=True, eq=False)
class NumericProfile:
    """Reference distribution of a numeric feature (immutable; arrays are read-only).

    ``values`` holds the sorted values, the distinct values or the knot positions depending on
    ``form``; ``weights`` is empty, the count of each distinct value, or the cumulative count at
    each knot. ``n`` is the sample size the profile stands for (p-values use it), which exceeds
    ``len(values)`` for capped and sketched profiles. ``atom_width`` is the lattice step of rounded
    data in a sketch (0 otherwise). ``bin_edges``/``bin_mass`` are the precomputed quantile bins.
    """

    form: NumericForm
    n: int
    values: FloatArray
    weights: FloatArray
    mean: float
    std: float
    bin_edges: FloatArray
    bin_mass: FloatArray
    atom_width: float = 0.0
    n_missing: int = 0

    kind: ClassVar[FeatureKind] = FeatureKind.NUMERIC

    def __post_init__(self) -> None:
        for array in (self.values, self.weights, self.bin_edges, self.bin_mass):
            array.setflags(write=False)

    # -- cumulative weights -------------------------------------------------------------------

    @cached_property
    def total(self) -> float:
        """Total weight: the denominator of the CDF (``len(values)`` for the sorted form)."""
        if self.form is NumericForm.SORTED:
            return float(self.values.size)
        if self.form is NumericForm.COUNTS:
            return float(self._cum0[-1])
        return float(self.weights[-1])

    @cached_property
    def _cum0(self) -> FloatArray:
        """Step forms: weight of the first k distinct values, for k = 0..len(values)."""
        if self.form is NumericForm.SORTED:
            return np.arange(self.values.size + 1, dtype=np.float64)
        return np.concatenate(([0.0], np.cumsum(self.weights)))

    @cached_property
    def _moment0(self) -> FloatArray:
        """Step forms: prefix sums of weight * (value - mean), centred to keep precision."""
        centred = self.values - self.mean
        if self.form is NumericForm.COUNTS:
            centred = centred * self.weights
        return np.concatenate(([0.0], np.cumsum(centred)))

    @cached_property
    def _area0(self) -> FloatArray:
        """Sketch: integral of the (unnormalised) CDF from the first knot to each knot."""
        z, g = self.values, self.weights
        return np.concatenate(([0.0], np.cumsum(np.diff(z) * (g[1:] + g[:-1]) * 0.5)))

    @cached_property
    def _indexes(self) -> dict[int, CoarseIndex]:
        return {}

    def coarse_index(self, step: int) -> CoarseIndex:
        """Step forms: the ``CoarseIndex`` with this step (built once per step, then cached).

        Searching a window's sorted values for the K grid values instead of the reference for
        every window value is what makes KS against a large stored reference cheap; the grid
        is small enough to stay in cache. Building one costs O(K).
        """
        if self.form is NumericForm.SKETCH:
            raise ValueError("a coarse index needs a sorted or counts profile")
        index = self._indexes.get(step)
        if index is None:
            size = self.values.size
            grid = np.ascontiguousarray(self.values[step - 1 :: step])
            first = np.arange(grid.size + 1, dtype=np.int64) * step
            last = np.minimum(first + (step - 1), size)
            if self.form is NumericForm.SORTED:
                low, high = first.astype(np.float64), last.astype(np.float64)
            else:
                low, high = self._cum0[first], self._cum0[last]
            for array in (grid, low, high):
                array.setflags(write=False)
            index = CoarseIndex(step=step, grid=grid, low=low, high=high)
            self._indexes[step] = index  # concurrent builders store equal values: harmless
        return index

    @property
    def maximum(self) -> float:
        """Largest value of the support."""
        return float(self.values[-1])

    # -- queries ----------------------------------------------------------------------------

    def cdf_counts(self, x: FloatArray, side: Side = "right") -> FloatArray:
        """Reference weight at or below ``x`` (``side="right"``) or strictly below (``"left"``)."""
        if self.form is NumericForm.SORTED:
            return np.searchsorted(self.values, x, side=side).astype(np.float64)
        if self.form is NumericForm.COUNTS:
            return self._cum0[np.searchsorted(self.values, x, side=side)]
        shift = 0.5 * self.atom_width
        return self._interpolate(x + shift if side == "right" else x - shift, side)

    def _interpolate(self, x: FloatArray, side: Side) -> FloatArray:
        z, g = self.values, self.weights
        j = np.searchsorted(z, x, side=side)
        inner = (j > 0) & (j < z.size)
        out = np.where(j == 0, 0.0, g[-1])
        k = j[inner]
        lo_z, hi_z, lo_g, hi_g = z[k - 1], z[k], g[k - 1], g[k]
        out[inner] = lo_g + (hi_g - lo_g) * ((x[inner] - lo_z) / (hi_z - lo_z))
        return out

    def integral(self, x: FloatArray) -> FloatArray:
        """Integral of the normalised CDF from minus infinity to ``x`` (vectorised)."""
        if self.form is NumericForm.SKETCH:
            z, g = self.values, self.weights
            j = np.searchsorted(z, x, side="right")
            k = np.clip(j, 1, z.size) - 1
            below = np.where(j < z.size, self._interpolate(x, "right"), g[-1])
            area = self._area0[k] + (x - z[k]) * (g[k] + below) * 0.5
            return np.where(j == 0, 0.0, area) / self.total
        k = self._count_at_or_below(x)
        below = k.astype(np.float64) if self.form is NumericForm.SORTED else self._cum0[k]
        return (below * (x - self.mean) - self._moment0[k]) / self.total

    def _count_at_or_below(self, x: FloatArray) -> IntArray:
        """Step forms: how many stored values are <= each x (``searchsorted(..., "right")``).

        For a long sorted x the two arrays are merged: in a stable sort of (values, x), stored
        values precede equal points, so point i lands after exactly (its rank - i) values.
        """
        v = self.values
        if (
            x.ndim == 1
            and x.size >= _MERGE_MIN
            and v.size <= _MERGE_RATIO * x.size
            and bool(np.all(x[1:] >= x[:-1]))
        ):
            order = np.argsort(np.concatenate((v, x)), kind="stable")
            return np.flatnonzero(order >= v.size) - np.arange(x.size)
        return np.searchsorted(v, x, side="right")

    def quantile(self, t: FloatArray) -> FloatArray:
        """Smallest x whose CDF reaches ``t`` (the left-continuous inverse), vectorised."""
        target = np.asarray(t, dtype=np.float64) * self.total
        last = self.values.size - 1
        if self.form is NumericForm.SORTED:
            # the count of k in 1..n with k < target, without searching: ceil(target) - 1
            # (fmin/fmax send NaN to the top, where a search would put it)
            k = np.fmax(np.fmin(np.ceil(target) - 1.0, float(last)), 0.0)
            return self.values[k.astype(np.int64)]
        if self.form is NumericForm.COUNTS:
            k = np.searchsorted(self._cum0[1:], target, side="left")
            return self.values[np.clip(k, 0, last)]
        z, g = self.values, self.weights
        j = np.clip(np.searchsorted(g, target, side="left"), 1, z.size - 1)
        span = g[j] - g[j - 1]
        frac = np.clip((target - g[j - 1]) / np.where(span > 0, span, 1.0), 0.0, 1.0)
        return np.where(target <= g[0], z[0], z[j - 1] + frac * (z[j] - z[j - 1]))

    def binned(self, bins: int) -> tuple[FloatArray, FloatArray]:
        """Interior edges and reference mass of ``bins`` quantile bins ``[e_(k-1), e_k)``.

        Equal quantiles (ties) merge, so fewer bins may come back. The precomputed bins are
        returned when ``bins`` matches them; other counts are derived from the profile.
        """
        if self.bin_mass.size == bins:
            return self.bin_edges, self.bin_mass
        return quantile_bins(self, bins)


def quantile_bins(profile: NumericProfile, bins: int) -> tuple[FloatArray, FloatArray]:
    """Edges at the reference quantiles k/bins (deduplicated) and the mass of each bin."""
    probs = np.arange(1, bins, dtype=np.float64) / bins
    edges = np.unique(profile.quantile(probs))
    below = profile.cdf_counts(edges, side="left")
    cum = np.concatenate(([0.0], below, [profile.total]))
    mass = np.diff(cum) / profile.total
    return edges, np.clip(mass, 0.0, 1.0)
