"""Population Stability Index over reference quantile bins or categories (distance only)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

import numpy as np
from pydantic import Field

from retrigger.stats.drift.base import Current, DriftParams, DriftTest
from retrigger.stats.drift.binned import ALL_KINDS, BinnedParams, proportions
from retrigger.stats.drift.results import Statistic
from retrigger.stats.profiles import Profile
from retrigger.stats.samples import FeatureKind, FloatArray


class PSIParams(BinnedParams):
    """``eps``: floor of every proportion, so empty cells give a finite index."""

    eps: float = Field(1e-4, gt=0, lt=0.01)


def psi(ref: FloatArray, cur: FloatArray, eps: float) -> float:
    """sum (cur - ref) * ln(cur / ref), both floored at ``eps``."""
    r, c = np.maximum(ref, eps), np.maximum(cur, eps)
    return float(np.sum((c - r) * np.log(c / r)))


class PSITest(DriftTest):
    r"""Population Stability Index; no p-value.

    Parameters
    ----------
    bins : int, default 10
        Numeric features: bins at the reference deciles (ties merge bins).
    eps : float, default 1e-4
        Floor of each proportion. An empty cell on one side then contributes
        ``(p - eps) ln(p / eps)`` instead of infinity (the convention of Evidently and most
        credit-scoring tools).
    min_effect : float, default 0.2
        The customary "significant shift" level (0.1-0.2 is "moderate"); 10 bins of 100 rows
        of identical data score about 0.09 by chance, so 0.1 would alarm on noise.

    Notes
    -----
    .. math:: PSI = \sum_i (c_i - r_i) \ln \frac{c_i}{r_i}

    symmetric in r and c (a symmetrised Kullback-Leibler divergence).

    References
    ----------
    Yurdakul, B. (2018). Statistical properties of population stability index. Western
    Michigan University, Dissertations 3208.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(2)
    >>> ref = rng.normal(size=5000)
    >>> PSITest().evaluate(ref, rng.normal(size=5000)).drifted
    False
    >>> round(PSITest().evaluate(ref, rng.normal(1.0, 1.0, size=5000)).statistic, 1)
    1.0
    """

    key = "psi"
    params_model = PSIParams
    kinds: ClassVar[frozenset[FeatureKind]] = ALL_KINDS
    symmetric_kinds = frozenset({FeatureKind.CATEGORICAL, FeatureKind.BOOLEAN})
    statistic_name = "psi"
    effect_name = "psi"
    default_min_effect = 0.2

    @classmethod
    def examples(cls) -> Iterable[DriftParams]:
        """Defaults and a finer binning."""
        yield PSIParams()
        yield PSIParams(bins=20)

    def statistic(self, reference: Profile, current: Current) -> Statistic:
        """PSI over common cells."""
        assert isinstance(self.params, PSIParams)
        ref, cur, cells = proportions(reference, current, self.params.bins)
        value = psi(ref, cur, self.params.eps)
        return Statistic(value=value, effect=value, details={"cells": cells})
