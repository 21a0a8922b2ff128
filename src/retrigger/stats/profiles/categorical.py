"""Categorical and boolean profiles: counts per category, for a reference or a current window."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from retrigger.stats.errors import InvalidSample
from retrigger.stats.samples import FeatureKind, FloatArray, IntArray, category_counts


@dataclass(frozen=True, eq=False)
class CategoricalProfile:
    """Counts per category (labels sorted); boolean features use the labels false/true."""

    kind: FeatureKind
    categories: tuple[str, ...]
    counts: IntArray
    n_missing: int = 0

    def __post_init__(self) -> None:
        self.counts.setflags(write=False)

    @cached_property
    def n(self) -> int:
        """Number of (non-missing) observations."""
        return int(self.counts.sum())

    @property
    def missing_share(self) -> float:
        """Share of missing values among all values seen."""
        total = self.n + self.n_missing
        return self.n_missing / total if total else 0.0

    @cached_property
    def index(self) -> dict[str, int]:
        """Position of each category label."""
        return {label: i for i, label in enumerate(self.categories)}


def categorical_profile(
    values: Any, *, kind: FeatureKind = FeatureKind.CATEGORICAL
) -> CategoricalProfile:
    """Count raw categorical (or boolean) values; ``None``/NaN are counted as missing."""
    labels, counts, missing = category_counts(values, kind=kind, what="sample")
    return CategoricalProfile(kind=kind, categories=labels, counts=counts, n_missing=missing)


def categorical_profile_from_counts(
    counts: Mapping[str, int], *, kind: FeatureKind = FeatureKind.CATEGORICAL, n_missing: int = 0
) -> CategoricalProfile:
    """Profile from client-sent counts per category (a histogram of a categorical feature)."""
    labels = tuple(sorted(str(k) for k in counts))
    values = np.array([counts[k] for k in sorted(counts, key=str)], dtype=np.int64)
    if len(set(labels)) != len(labels) or (values < 0).any() or values.sum() <= 0:
        raise InvalidSample("counts: need distinct labels and counts >= 0, not all zero")
    if kind is FeatureKind.BOOLEAN and not set(labels) <= {"false", "true"}:
        raise InvalidSample("counts: boolean features take the labels 'false' and 'true'")
    if kind is FeatureKind.BOOLEAN:
        full = {"false": 0, "true": 0} | dict(zip(labels, values.tolist(), strict=True))
        labels, values = ("false", "true"), np.array([full["false"], full["true"]], dtype=np.int64)
    return CategoricalProfile(kind=kind, categories=labels, counts=values, n_missing=n_missing)


def aligned(
    reference: CategoricalProfile, current: CategoricalProfile
) -> tuple[tuple[str, ...], FloatArray, FloatArray]:
    """Counts of both samples over the union of categories (reference order, then new labels)."""
    extra = tuple(c for c in current.categories if c not in reference.index)
    labels = reference.categories + extra
    ref = np.zeros(len(labels), dtype=np.float64)
    ref[: len(reference.categories)] = reference.counts
    cur = np.zeros(len(labels), dtype=np.float64)
    position = {label: i for i, label in enumerate(labels)}
    cur[[position[c] for c in current.categories]] = current.counts
    return labels, ref, cur
