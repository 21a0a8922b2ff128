"""Jensen-Shannon distance (base 2) over reference quantile bins or categories (distance only)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy import special

from retrigger.stats.drift.base import Current, DriftTest
from retrigger.stats.drift.binned import ALL_KINDS, BinnedParams, proportions
from retrigger.stats.drift.results import Statistic
from retrigger.stats.profiles import Profile
from retrigger.stats.samples import FeatureKind, FloatArray


def js_distance(p: FloatArray, q: FloatArray) -> float:
    """sqrt of the Jensen-Shannon divergence in bits, in [0, 1]."""
    mid = 0.5 * (p + q)
    divergence = 0.5 * (special.rel_entr(p, mid).sum() + special.rel_entr(q, mid).sum())
    return float(np.sqrt(max(divergence / np.log(2.0), 0.0)))


class JensenShannonTest(DriftTest):
    r"""Jensen-Shannon distance with base-2 logarithms; no p-value.

    Parameters
    ----------
    bins : int, default 10
        Numeric features: bins at the reference deciles.
    min_effect : float, default 0.1
        Evidently's threshold for large samples. A 0.5 sd normal shift scores about 0.2, a
        0.02 sd shift under 0.01; pure noise is about sqrt((k-1) / (8 ln2 n_eff)) for k cells,
        which is why ``auto`` uses it only when n_eff >= 100 k.

    Notes
    -----
    .. math:: JS(p, q) = \sqrt{\tfrac12 KL(p \| m) + \tfrac12 KL(q \| m)},\quad m = \tfrac12 (p + q)

    with logarithms base 2, so 0 <= JS <= 1. Empty cells need no epsilon (0 log 0 = 0).
    Equals ``scipy.spatial.distance.jensenshannon(p, q, base=2)``.

    References
    ----------
    Endres, D. M., Schindelin, J. E. (2003). A new metric for probability distributions.
    IEEE Transactions on Information Theory 49(7), 1858-1860.

    Examples
    --------
    >>> JensenShannonTest().evaluate(["a"] * 60 + ["b"] * 40, ["a"] * 60 + ["b"] * 40).statistic
    0.0
    >>> round(JensenShannonTest().evaluate(["a"] * 100, ["b"] * 100).statistic, 3)
    1.0
    """

    key = "jensen_shannon"
    params_model = BinnedParams
    kinds: ClassVar[frozenset[FeatureKind]] = ALL_KINDS
    symmetric_kinds = frozenset({FeatureKind.CATEGORICAL, FeatureKind.BOOLEAN})
    statistic_name = "js_distance"
    effect_name = "js_distance"
    default_min_effect = 0.1

    def statistic(self, reference: Profile, current: Current) -> Statistic:
        """JS distance over common cells."""
        assert isinstance(self.params, BinnedParams)
        ref, cur, cells = proportions(reference, current, self.params.bins)
        value = js_distance(ref, cur)
        return Statistic(value=value, effect=value, details={"cells": cells})
