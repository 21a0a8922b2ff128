"""Two-sample Kolmogorov-Smirnov test against a stored reference profile."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, Literal

import numpy as np

from retrigger.stats.drift.base import Current, DriftParams, DriftTest, numeric_inputs
from retrigger.stats.drift.ks_pvalue import ks_pvalue
from retrigger.stats.drift.results import Statistic
from retrigger.stats.profiles import NumericForm, NumericProfile, Profile
from retrigger.stats.samples import FeatureKind, FloatArray, IntArray


class KSParams(DriftParams):
    """``method``: p-value computation, as in ``scipy.stats.ks_2samp``."""

    method: Literal["auto", "exact", "asymp"] = "auto"


_BUCKET_POINTS = 16
"""Window values per coarse-index bucket, on average (the index has about m / 16 entries)."""
_INDEX_MIN_WINDOW = 2_000
"""Smallest window for which the coarse index is used (below, fixed costs dominate)."""


def ks_statistic(reference: NumericProfile, current_sorted: FloatArray) -> float:
    """sup_x |F_ref(x) - F_cur(x)|, never re-sorting the reference.

    Between consecutive distinct current values F_cur is constant and F_ref non-decreasing, so
    the supremum is reached at a current value: F_cur - F_ref at the value itself, F_ref - F_cur
    just before it. With ``t`` the position of a value in the sorted window, ``(t + 1) / m -
    F_ref(c_t)`` and ``F_ref(c_t-) - t / m`` never exceed those two quantities at that value
    and equal them at the last (resp. first) of equal values, so the maxima over positions are
    the same numbers. Three ways to evaluate them, all giving the same floating-point result:

    * a window of 2 000 values or more, at most as large as a step-form reference: the coarse
      index (``_indexed``), which reads the reference exactly only near the maximum;
    * a window larger than a step-form reference: the reference's distinct values are looked
      up in the window instead (``_from_reference_side``);
    * otherwise (and for sketches): binary searches at every distinct window value.
    """
    c = current_sorted
    m = c.size
    if reference.form is not NumericForm.SKETCH:
        size = reference.values.size
        if m > size:
            return _from_reference_side(reference, c)
        if m >= _INDEX_MIN_WINDOW:
            return _indexed(reference, c)
    last = np.flatnonzero(np.concatenate((c[1:] != c[:-1], [True])))
    points = c[last]
    at_or_below = (last + 1) / m
    below = np.concatenate(([0], last[:-1] + 1)) / m
    ref_right = reference.cdf_counts(points, side="right")
    ref_left = _left_counts(reference, points, ref_right)
    total = reference.total
    d_cur_above = float(np.max(at_or_below - ref_right / total))
    d_ref_above = float(np.max(ref_left / total - below))
    return max(d_cur_above, d_ref_above, 0.0)


def _index_step(size: int, m: int) -> int:
    """Power of two near ``size * _BUCKET_POINTS / m`` (few distinct steps, so few indexes)."""
    target = max(2.0, size * _BUCKET_POINTS / m)
    return 1 << round(float(np.log2(target)))


def _indexed(reference: NumericProfile, c: FloatArray) -> float:
    """The supremum via the reference's coarse index: exact, but reads few reference values.

    The K grid values are searched in the sorted window (about m/16 searches in an array of m,
    instead of m searches in the reference). Window positions with exactly k grid values at
    or below them form a bucket [start_k, stop_k) on which the reference weight at or below
    lies in [low_k, high_k]; positions with exactly k grid values *strictly* below them form a
    bucket on which the weight strictly below lies in the same range. So (t + 1)/m - F_ref is
    at most stop_k/m - low_k/n over the first kind of bucket, and F_ref(c_t-) - t/m at most
    high_k/n - start_k/m over the second (in floating point too: rounding is monotone). The
    bucket with the largest bound of each kind is evaluated exactly first; that exact value is
    a lower bound of D, and only buckets whose upper bound reaches it can hold the supremum.
    """
    m = c.size
    total = reference.total
    index = reference.coarse_index(_index_step(reference.values.size, m))
    up_start, up_stop = _buckets(np.searchsorted(c, index.grid, side="left"), m)
    down_start, down_stop = _buckets(np.searchsorted(c, index.grid, side="right"), m)
    upper_up = np.where(up_stop > up_start, up_stop / m - index.low / total, -np.inf)
    upper_down = np.where(down_stop > down_start, index.high / total - down_start / m, -np.inf)
    k_up, k_down = int(np.argmax(upper_up)), int(np.argmax(upper_down))
    found = max(
        _exact_up(reference, c, np.arange(up_start[k_up], up_stop[k_up])),
        _exact_down(reference, c, np.arange(down_start[k_down], down_stop[k_down])),
    )
    up = np.flatnonzero(upper_up >= found)
    down = np.flatnonzero(upper_down >= found)
    return max(
        found,
        _exact_up(reference, c, _positions(up_start[up], up_stop[up])),
        _exact_down(reference, c, _positions(down_start[down], down_stop[down])),
        0.0,
    )


def _buckets(searched: IntArray, m: int) -> tuple[IntArray, IntArray]:
    """Bucket k is [edges[k], edges[k + 1]) with edges = 0, searched..., m."""
    edges = np.empty(searched.size + 2, dtype=np.int64)
    edges[0], edges[-1] = 0, m
    edges[1:-1] = searched
    return edges[:-1], edges[1:]


def _positions(start: IntArray, stop: IntArray) -> IntArray:
    """Concatenation of ``arange(start[i], stop[i])`` over i, vectorised."""
    lengths = stop - start
    before = np.cumsum(lengths) - lengths
    offsets: IntArray = np.repeat(start - before, lengths)
    return np.arange(int(lengths.sum()), dtype=np.int64) + offsets


def _exact_up(reference: NumericProfile, c: FloatArray, t: IntArray) -> float:
    """max of (t + 1)/m - F_ref(c_t) over window positions ``t`` (last of equal values only)."""
    m = c.size
    t = t[(t == m - 1) | (c[np.minimum(t + 1, m - 1)] != c[t])]
    if t.size == 0:
        return 0.0
    right = reference.cdf_counts(c[t], side="right")
    return float(np.max((t + 1) / m - right / reference.total))


def _exact_down(reference: NumericProfile, c: FloatArray, t: IntArray) -> float:
    """max of F_ref(c_t-) - t/m over window positions ``t`` (first of equal values only)."""
    t = t[(t == 0) | (c[np.maximum(t - 1, 0)] != c[t])]
    if t.size == 0:
        return 0.0
    left = reference.cdf_counts(c[t], side="left")
    return float(np.max(left / reference.total - t / c.size))


def _from_reference_side(reference: NumericProfile, c: FloatArray) -> float:
    """The same supremum, evaluated at the reference's distinct values (step forms only)."""
    v = reference.values
    last = np.flatnonzero(np.concatenate((v[1:] != v[:-1], [True])))
    points = v[last]
    upto = reference.cdf_counts(points, side="right") / reference.total  # F_ref at each point
    before = np.concatenate(([0.0], upto[:-1]))  # F_ref just before each point
    m = c.size
    cur_right = np.searchsorted(c, points, side="right") / m
    cur_left = np.searchsorted(c, points, side="left") / m
    return max(float(np.max(upto - cur_right)), float(np.max(cur_left - before)), 0.0)


def _left_counts(reference: NumericProfile, points: FloatArray, right: FloatArray) -> FloatArray:
    """Reference counts strictly below ``points``; only points equal to a stored value differ
    from the right counts, so the second search runs on those alone (usually none)."""
    if reference.form is not NumericForm.SORTED:
        return reference.cdf_counts(points, side="left")
    idx = right.astype(np.int64) - 1
    tied = (idx >= 0) & (reference.values[np.maximum(idx, 0)] == points)
    if not tied.any():
        return right
    left = right.copy()
    left[tied] = np.searchsorted(reference.values, points[tied], side="left")
    return left


class KSTest(DriftTest):
    r"""Two-sample Kolmogorov-Smirnov test (two-sided).

    Parameters
    ----------
    method : {"auto", "exact", "asymp"}
        ``auto`` (default) is exact when both samples have at most 10 000 values and
        asymptotic above, the rule of ``scipy.stats.ks_2samp``.
    min_effect : float, default 0.05
        Smallest D that counts as material (0.05 is the D of a 0.125 sd normal shift).

    Notes
    -----
    .. math:: D = \sup_x |F_{ref}(x) - F_{cur}(x)|

    The effect size is D itself. With a ``sorted`` or ``counts`` profile D equals scipy's to
    machine precision; with a sketch it is within the sketch's stated error. The p-value uses
    the reference's full size n, also for capped or sketched profiles.

    References
    ----------
    Hodges, J. L. (1958). The significance probability of the Smirnov two-sample test.
    Arkiv for Matematik 3(5), 469-486.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ref, cur = rng.normal(size=500), rng.normal(0.5, 1.0, size=400)
    >>> result = KSTest().evaluate(ref, cur)
    >>> result.status.value, result.details["p_method"]
    ('drift', 'exact')
    >>> KSTest().evaluate(ref, rng.normal(size=400)).drifted
    False
    """

    key = "ks"
    params_model = KSParams
    kinds: ClassVar[frozenset[FeatureKind]] = frozenset({FeatureKind.NUMERIC})
    statistic_name = "D"
    effect_name = "D"
    default_min_effect = 0.05
    has_p_value = True
    symmetric_kinds = kinds

    @classmethod
    def examples(cls) -> Iterable[DriftParams]:
        """Default (auto) and forced asymptotic p-values."""
        yield KSParams()
        yield KSParams(method="asymp")

    def statistic(self, reference: Profile, current: Current) -> Statistic:
        """D against the profile and its p-value (method recorded in ``details``)."""
        ref, cur = numeric_inputs(reference, current)
        d = ks_statistic(ref, cur.sorted)
        assert isinstance(self.params, KSParams)
        p, method = ks_pvalue(d, ref.n, cur.n, self.params.method)
        return Statistic(value=d, effect=d, p_value=p, details={"p_method": method})
