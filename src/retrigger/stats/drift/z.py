"""Two-proportion Z-test for boolean features."""

from __future__ import annotations

import math
from typing import ClassVar

from scipy import stats

from retrigger.stats.drift.base import Current, DriftTest, categorical_inputs
from retrigger.stats.drift.results import Statistic
from retrigger.stats.profiles import CategoricalProfile, Profile
from retrigger.stats.samples import FeatureKind


def _true_count(profile: CategoricalProfile) -> tuple[float, float]:
    position = profile.index.get("true")
    return (0.0 if position is None else float(profile.counts[position])), float(profile.n)


class ZTest(DriftTest):
    r"""Pooled two-proportion Z-test of the share of ``true`` (two-sided).

    Parameters
    ----------
    min_effect : float, default 0.1
        Smallest Cohen's h that is material; h = 0.1 is a move from 50% to 55%, or from
        1% to about 2.3%, the arcsine scale weighing rare-event changes fairly.

    Notes
    -----
    .. math:: z = \frac{\hat p_{cur} - \hat p_{ref}}
                       {\sqrt{\bar p (1 - \bar p)(1/n_{ref} + 1/n_{cur})}},
              \quad h = |2 \arcsin \sqrt{\hat p_{cur}} - 2 \arcsin \sqrt{\hat p_{ref}}|

    with the pooled share :math:`\bar p`; p = 2 (1 - Phi(|z|)). z squared equals the chi-square
    of the 2 x 2 table without continuity correction. When both samples are all true or all
    false, z = 0 and p = 1.

    References
    ----------
    Cohen, J. (1988). Statistical Power Analysis for the Behavioral Sciences, 2nd ed., ch. 6.

    Examples
    --------
    >>> result = ZTest().evaluate([True] * 30 + [False] * 70, [True] * 60 + [False] * 40)
    >>> round(result.statistic, 3), result.drifted
    (4.264, True)
    """

    key = "z"
    kinds: ClassVar[frozenset[FeatureKind]] = frozenset({FeatureKind.BOOLEAN})
    symmetric_kinds = kinds
    statistic_name = "z"
    effect_name = "cohens_h"
    default_min_effect = 0.1
    has_p_value = True

    def statistic(self, reference: Profile, current: Current) -> Statistic:
        """z, its two-sided p-value and Cohen's h."""
        ref, cur = categorical_inputs(reference, current)
        x_ref, n_ref = _true_count(ref)
        x_cur, n_cur = _true_count(cur)
        p_ref, p_cur = x_ref / n_ref, x_cur / n_cur
        pooled = (x_ref + x_cur) / (n_ref + n_cur)
        se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n_ref + 1.0 / n_cur))
        z = (p_cur - p_ref) / se if se > 0 else 0.0
        h = abs(2.0 * math.asin(math.sqrt(p_cur)) - 2.0 * math.asin(math.sqrt(p_ref)))
        p_value = float(2.0 * stats.norm.sf(abs(z)))
        return Statistic(
            value=z, effect=h, p_value=min(p_value, 1.0), details={"p_ref": p_ref, "p_cur": p_cur}
        )
