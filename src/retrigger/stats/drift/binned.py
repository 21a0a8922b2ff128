"""Shared by the distribution-distance tests: both samples as proportions over common bins.

Numeric features use the reference's quantile bins (precomputed in the profile); categorical and
boolean features use the union of categories, with categories unseen in the reference at
proportion 0 there.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from retrigger.stats.drift.base import Current, DriftParams
from retrigger.stats.errors import InvalidSample
from retrigger.stats.profiles import CategoricalProfile, NumericProfile, Profile
from retrigger.stats.profiles.categorical import aligned
from retrigger.stats.samples import FeatureKind, FloatArray, NumericSample

ALL_KINDS = frozenset({FeatureKind.NUMERIC, FeatureKind.CATEGORICAL, FeatureKind.BOOLEAN})


class BinnedParams(DriftParams):
    """``bins``: quantile bins of the reference for numeric features (ignored for categories)."""

    bins: int = Field(10, ge=2, le=1000)


def proportions(
    reference: Profile, current: Current, bins: int
) -> tuple[FloatArray, FloatArray, int]:
    """Reference and current proportions over common cells, and the number of cells."""
    if isinstance(reference, NumericProfile) and isinstance(current, NumericSample):
        edges, ref = reference.binned(bins)
        index = np.searchsorted(edges, current.values, side="right")
        cur = np.bincount(index, minlength=edges.size + 1).astype(np.float64) / current.n
        return ref, cur, int(ref.size)
    if isinstance(reference, CategoricalProfile) and isinstance(current, CategoricalProfile):
        _, ref_counts, cur_counts = aligned(reference, current)
        return ref_counts / reference.n, cur_counts / current.n, int(ref_counts.size)
    raise InvalidSample("reference and current are of different kinds")  # pragma: no cover
