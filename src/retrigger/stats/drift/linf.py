"""L-infinity distance between category proportions (distance only)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from retrigger.stats.drift.base import Current, DriftTest, categorical_inputs
from retrigger.stats.drift.results import Statistic
from retrigger.stats.profiles import Profile
from retrigger.stats.profiles.categorical import aligned
from retrigger.stats.samples import FeatureKind


class LinfTest(DriftTest):
    r"""Largest absolute change of any category's share; no p-value.

    Parameters
    ----------
    min_effect : float, default 0.1
        A category gaining or losing 10 percentage points is material.

    Notes
    -----
    .. math:: L_\infty = \max_k |p_k - q_k|

    over the union of categories (a category unseen in the reference has p = 0). The
    category that moved most is in ``details["category"]``.

    References
    ----------
    alibi-detect, ``TabularDrift`` / Evidently: categorical drift by per-category share.
    Rabanser, S., Guennemann, S., Lipton, Z. (2019). Failing loudly: an empirical study of
    methods for detecting dataset shift. NeurIPS.

    Examples
    --------
    >>> LinfTest().evaluate(["x"] * 70 + ["y"] * 30, ["x"] * 50 + ["y"] * 50).statistic
    0.2
    """

    key = "linf"
    kinds: ClassVar[frozenset[FeatureKind]] = frozenset(
        {FeatureKind.CATEGORICAL, FeatureKind.BOOLEAN}
    )
    symmetric_kinds = kinds
    statistic_name = "linf"
    effect_name = "linf"
    default_min_effect = 0.1

    def statistic(self, reference: Profile, current: Current) -> Statistic:
        """Max absolute difference of proportions, and where it is."""
        ref_p, cur_p = categorical_inputs(reference, current)
        labels, ref, cur = aligned(ref_p, cur_p)
        diff = np.abs(ref / ref.sum() - cur / cur.sum())
        at = int(np.argmax(diff))
        value = float(diff[at])
        return Statistic(value=value, effect=value, details={"category": labels[at]})
