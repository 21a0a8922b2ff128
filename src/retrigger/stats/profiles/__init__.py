"""Reference profiles: a feature's baseline distribution, computed once and compared many times.

Numeric profiles keep sorted values, distinct values with counts, or a quantile sketch
(``profiles.build``); categorical and boolean ones keep counts per category. All serialise to
compact bytes (``profile_to_bytes`` / ``profile_from_bytes``).
"""

from __future__ import annotations

from typing import Any

from retrigger.stats.profiles.build import (
    ProfileOptions,
    numeric_profile,
    numeric_profile_from_histogram,
    numeric_profile_from_quantiles,
)
from retrigger.stats.profiles.categorical import (
    CategoricalProfile,
    categorical_profile,
    categorical_profile_from_counts,
)
from retrigger.stats.profiles.codec import Profile, profile_from_bytes, profile_to_bytes
from retrigger.stats.profiles.numeric import NumericForm, NumericProfile
from retrigger.stats.samples import FeatureKind

__all__ = [
    "CategoricalProfile",
    "FeatureKind",
    "NumericForm",
    "NumericProfile",
    "Profile",
    "ProfileOptions",
    "build_profile",
    "categorical_profile",
    "categorical_profile_from_counts",
    "numeric_profile",
    "numeric_profile_from_histogram",
    "numeric_profile_from_quantiles",
    "profile_from_bytes",
    "profile_to_bytes",
]


def build_profile(
    values: Any, kind: FeatureKind | str, options: ProfileOptions | None = None
) -> Profile:
    """Profile raw reference values of a feature of the given kind."""
    feature_kind = FeatureKind(kind)
    if feature_kind is FeatureKind.NUMERIC:
        return numeric_profile(values, options)
    return categorical_profile(values, kind=feature_kind)
