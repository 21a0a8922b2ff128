"""Hellinger distance over reference quantile bins or categories (distance only)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from retrigger.stats.drift.base import Current, DriftTest
from retrigger.stats.drift.binned import ALL_KINDS, BinnedParams, proportions
from retrigger.stats.drift.results import Statistic
from retrigger.stats.profiles import Profile
from retrigger.stats.samples import FeatureKind, FloatArray


def hellinger(p: FloatArray, q: FloatArray) -> float:
    """sqrt(1 - sum sqrt(p q)), in [0, 1]."""
    overlap = float(np.sum(np.sqrt(p * q)))
    return float(np.sqrt(max(1.0 - overlap, 0.0)))


class HellingerTest(DriftTest):
    r"""Hellinger distance between binned distributions; no p-value.

    Parameters
    ----------
    bins : int, default 10
        Numeric features: bins at the reference deciles.
    min_effect : float, default 0.1
        About the distance of a 0.3 sd normal shift on deciles; a 0.02 sd shift scores under
        0.01 and noise about sqrt((k-1) / (8 n_eff)) for k cells.

    Notes
    -----
    .. math:: H(p, q) = \sqrt{1 - \sum_i \sqrt{p_i q_i}} = \tfrac{1}{\sqrt2} \|\sqrt p - \sqrt q\|_2

    References
    ----------
    Hellinger, E. (1909). Neue Begruendung der Theorie quadratischer Formen von unendlichvielen
    Veraenderlichen. J. Reine Angew. Math. 136, 210-271.

    Examples
    --------
    >>> round(HellingerTest().evaluate(["a"] * 50 + ["b"] * 50, ["a"] * 100).statistic, 4)
    0.5412
    """

    key = "hellinger"
    params_model = BinnedParams
    kinds: ClassVar[frozenset[FeatureKind]] = ALL_KINDS
    symmetric_kinds = frozenset({FeatureKind.CATEGORICAL, FeatureKind.BOOLEAN})
    statistic_name = "hellinger"
    effect_name = "hellinger"
    default_min_effect = 0.1

    def statistic(self, reference: Profile, current: Current) -> Statistic:
        """Hellinger distance over common cells."""
        assert isinstance(self.params, BinnedParams)
        ref, cur, cells = proportions(reference, current, self.params.bins)
        value = hellinger(ref, cur)
        return Statistic(value=value, effect=value, details={"cells": cells})
