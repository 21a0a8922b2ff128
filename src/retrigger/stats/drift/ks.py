"""Two-sample Kolmogorov-Smirnov test against a stored reference profile."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, Literal

import numpy as np

from retrigger.stats.drift.base import Current, DriftParams, DriftTest, numeric_inputs
from retrigger.stats.drift.ks_pvalue import ks_pvalue
from retrigger.stats.drift.results import Statistic
from retrigger.stats.profiles import NumericForm, NumericProfile, Profile
from retrigger.stats.samples import FeatureKind, FloatArray


class KSParams(DriftParams):
    """``method``: p-value computation, as in ``scipy.stats.ks_2samp``."""

    method: Literal["auto", "exact", "asymp"] = "auto"


def ks_statistic(reference: NumericProfile, current_sorted: FloatArray) -> float:
    """sup_x |F_ref(x) - F_cur(x)| in O(m log m + m log n), never re-sorting the reference.

    Between consecutive distinct current values F_cur is constant and F_ref non-decreasing, so
    the supremum is reached at a current value: F_cur - F_ref at the value itself, F_ref - F_cur
    just before it. F_ref is read there with binary searches (right and left limits). When the
    window is larger than an exact (step) reference, the roles swap and the reference's
    distinct values are looked up in the sorted window instead, which is cheaper.
    """
    c = current_sorted
    m = c.size
    if reference.form is not NumericForm.SKETCH and m > reference.values.size:
        return _from_reference_side(reference, c)
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
