"""Wasserstein-1 distance normalised by the reference standard deviation (distance only)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from retrigger.stats.drift.base import Current, DriftTest, numeric_inputs
from retrigger.stats.drift.results import Statistic
from retrigger.stats.profiles import NumericProfile, Profile
from retrigger.stats.samples import FeatureKind, FloatArray

STD_FLOOR = 1e-6
"""Relative floor of the normaliser: max(sd_ref, 1e-6 * max(1, |mean_ref|)). A constant
reference (sd = 0) would otherwise divide by zero; with the floor, any real move of a constant
feature is a large effect, and identical constants give 0."""


def wasserstein_distance(reference: NumericProfile, current_sorted: FloatArray) -> float:
    """W1 = integral |F_ref - F_cur| dx against a profile, in O(m log n).

    On each interval [c_k, c_k+1) between sorted current values F_cur is the constant k/m; with
    I(x) the integral of F_ref up to x and q the reference quantile where F_ref crosses k/m
    (clipped to the interval), the interval contributes I(a) + I(b) - 2 I(q) + t (2q - a - b).
    The tails add the integral of F_ref below c_1 and of 1 - F_ref above c_m.
    """
    c = current_sorted
    m = c.size
    integral_at_c = reference.integral(c)
    head = float(integral_at_c[0])
    top = reference.maximum
    top_integral = float(reference.integral(np.array([top]))[0])
    tail = max(0.0, float(top - c[-1]) - (top_integral - float(integral_at_c[-1])))
    if m == 1:
        return head + tail
    levels = np.arange(1, m, dtype=np.float64) / m
    a, b = c[:-1], c[1:]
    q = np.clip(reference.quantile(levels), a, b)
    middle = integral_at_c[:-1] + integral_at_c[1:] - 2.0 * reference.integral(q)
    middle += levels * (2.0 * q - a - b)
    return head + float(np.maximum(middle, 0.0).sum()) + tail


def normaliser(reference: NumericProfile) -> float:
    """The reference standard deviation, floored (see ``STD_FLOOR``)."""
    return max(reference.std, STD_FLOOR * max(1.0, abs(reference.mean)))


class WassersteinTest(DriftTest):
    r"""Normalised Wasserstein-1 (earth mover's) distance; no p-value.

    Parameters
    ----------
    min_effect : float, default 0.1
        Smallest normalised distance that counts as drift (a 0.1 sd shift of any
        distribution moves it by exactly 0.1), the threshold Evidently uses for large data.

    Notes
    -----
    .. math:: W = \frac{1}{\max(\sigma_{ref}, \epsilon)} \int |F_{ref}(x) - F_{cur}(x)| \, dx

    with :math:`\epsilon = 10^{-6} \max(1, |\mu_{ref}|)` (``STD_FLOOR``). The raw distance is in
    ``details["distance"]`` and equals ``scipy.stats.wasserstein_distance``. Sampling noise of
    W shrinks like 1/sqrt(n): it decides alone only when both samples are large (see
    ``retrigger.stats.auto``).

    References
    ----------
    Ramdas, A., Garcia, N., Cuturi, M. (2017). On Wasserstein two-sample testing and related
    families of nonparametric tests. Entropy 19(2), 47.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> ref = rng.normal(10.0, 2.0, size=5000)
    >>> round(WassersteinTest().evaluate(ref, ref + 1.0).effect_size, 2)  # 1 / sd of the sample
    0.5
    """

    key = "wasserstein"
    kinds: ClassVar[frozenset[FeatureKind]] = frozenset({FeatureKind.NUMERIC})
    statistic_name = "W_normed"
    effect_name = "W_normed"
    default_min_effect = 0.1

    def statistic(self, reference: Profile, current: Current) -> Statistic:
        """Raw W1 against the profile, divided by the floored reference sd."""
        ref, cur = numeric_inputs(reference, current)
        distance = wasserstein_distance(ref, cur.sorted)
        scale = normaliser(ref)
        value = distance / scale
        return Statistic(value=value, effect=value, details={"distance": distance, "scale": scale})
