"""Chi-square test of homogeneity between reference and current category counts."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from pydantic import Field
from scipy import stats

from retrigger.stats.drift.base import Current, DriftParams, DriftTest, categorical_inputs
from retrigger.stats.drift.results import Statistic
from retrigger.stats.profiles import Profile
from retrigger.stats.profiles.categorical import aligned
from retrigger.stats.samples import FeatureKind, FloatArray


class Chi2Params(DriftParams):
    """``min_expected``: smallest expected count a category may have before it is pooled."""

    min_expected: float = Field(5.0, ge=0)


def pool_sparse(
    ref: FloatArray, cur: FloatArray, min_expected: float
) -> tuple[FloatArray, FloatArray, int]:
    """Merge categories whose expected count (in the smaller sample) is below ``min_expected``.

    Categories empty on both sides are dropped. The sparse ones are summed into one "other"
    column; if that column is itself still too sparse it is added to the smallest remaining
    category. Returns the pooled columns and how many categories were pooled.
    """
    keep = (ref + cur) > 0
    ref, cur = ref[keep], cur[keep]
    total = ref + cur
    expected = min(ref.sum(), cur.sum()) * total / total.sum()
    sparse = expected < min_expected
    if not sparse.any():
        return ref, cur, 0
    r, c = ref[~sparse], cur[~sparse]
    other_r, other_c = float(ref[sparse].sum()), float(cur[sparse].sum())
    if r.size and min(ref.sum(), cur.sum()) * (other_r + other_c) / total.sum() < min_expected:
        smallest = int(np.argmin(r + c))
        r, c = r.copy(), c.copy()
        r[smallest] += other_r
        c[smallest] += other_c
    else:
        r, c = np.append(r, other_r), np.append(c, other_c)
    return r, c, int(sparse.sum())


def balanced_cramers_v(ref: FloatArray, cur: FloatArray) -> float:
    """Cramer's V of the two distributions as if both samples had the same size, in [0, 1]:
    sqrt(1/2 sum (p - q)^2 / (p + q)). Unlike V of the raw table it does not depend on the
    sample sizes, so it can serve as a materiality threshold."""
    p, q = ref / ref.sum(), cur / cur.sum()
    s = p + q
    nz = s > 0
    return float(np.sqrt(0.5 * np.sum((p[nz] - q[nz]) ** 2 / s[nz])))


class Chi2Test(DriftTest):
    r"""Pearson chi-square test of homogeneity on the 2 x k table of category counts.

    Parameters
    ----------
    min_expected : float, default 5
        Categories whose expected count in the smaller sample is below this are pooled
        (Cochran's rule), so the chi-square approximation holds; 0 disables pooling.
    min_effect : float, default 0.1
        Smallest balanced Cramer's V that counts as material (Cohen's "small"; a binary
        feature moving from 50/50 to 40/60 scores 0.1).

    Notes
    -----
    .. math:: \chi^2 = \sum_{s \in \{ref, cur\}} \sum_k \frac{(O_{sk} - E_{sk})^2}{E_{sk}},
              \quad E_{sk} = \frac{n_s \, t_k}{N},\ \mathrm{df} = k - 1

    No continuity correction (equals ``scipy.stats.chi2_contingency(table, correction=False)``).
    Categories unseen in the reference need no special case: their expected counts are
    positive under homogeneity. Categories absent from both samples are dropped; with fewer
    than two columns left the test returns chi2 = 0 and p = 1 (nothing to compare).

    References
    ----------
    Cochran, W. G. (1954). Some methods for strengthening the common chi-square tests.
    Biometrics 10(4), 417-451.

    Examples
    --------
    >>> ref = ["a"] * 50 + ["b"] * 30 + ["c"] * 20
    >>> cur = ["a"] * 20 + ["b"] * 30 + ["c"] * 50
    >>> result = Chi2Test().evaluate(ref, cur)
    >>> round(result.statistic, 3), result.drifted
    (25.714, True)
    """

    key = "chi2"
    params_model = Chi2Params
    kinds: ClassVar[frozenset[FeatureKind]] = frozenset(
        {FeatureKind.CATEGORICAL, FeatureKind.BOOLEAN}
    )
    symmetric_kinds = kinds
    statistic_name = "chi2"
    effect_name = "cramers_v"
    default_min_effect = 0.1
    has_p_value = True

    def statistic(self, reference: Profile, current: Current) -> Statistic:
        """Chi-square on the pooled table; effect on the unpooled proportions."""
        ref_p, cur_p = categorical_inputs(reference, current)
        assert isinstance(self.params, Chi2Params)
        _, ref, cur = aligned(ref_p, cur_p)
        effect = balanced_cramers_v(ref, cur)
        r, c, pooled = pool_sparse(ref, cur, self.params.min_expected)
        details: dict[str, str | int | float | bool] = {"pooled_categories": pooled}
        if r.size < 2:
            details["note"] = "fewer than two categories with enough data"
            return Statistic(value=0.0, effect=effect, p_value=1.0, details=details)
        table = np.vstack((r, c))
        expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
        value = float(np.sum((table - expected) ** 2 / expected))
        dof = r.size - 1
        details["dof"] = dof
        return Statistic(
            value=value, effect=effect, p_value=float(stats.chi2.sf(value, dof)), details=details
        )
