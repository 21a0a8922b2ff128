"""Input hygiene: turn raw feature values into clean samples, counting what had to be dropped.

NaN, infinities and magnitudes above ``MAX_ABS`` (numeric) or ``None``/NaN (categorical, boolean)
are *missing*: excluded from every test and reported as a count and a share. A sample that is empty
after cleaning, or whose values are of the wrong kind, raises ``InvalidSample``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Any

import numpy as np
import numpy.typing as npt

from retrigger.stats.errors import EmptySample, InvalidSample

MAX_ABS = 1e150
"""Finite values beyond this magnitude are treated like infinities (counted as missing): keeping
them would let sums of squares overflow and turn statistics into inf or NaN."""

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no"})


class FeatureKind(StrEnum):
    """Kind of a feature, as declared in a product's feature schema."""

    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"


@dataclass(frozen=True, eq=False)
class NumericSample:
    """Finite numeric values of one window plus the number of missing values dropped."""

    values: FloatArray
    n_missing: int

    @property
    def n(self) -> int:
        """Number of usable values."""
        return int(self.values.size)

    @property
    def missing_share(self) -> float:
        """Share of the raw values that were missing (0 when nothing was dropped)."""
        total = self.n + self.n_missing
        return self.n_missing / total if total else 0.0

    @cached_property
    def sorted(self) -> FloatArray:
        """The values in ascending order (computed once, shared by KS and Wasserstein)."""
        return np.sort(self.values)


def infer_kind(values: Any) -> FeatureKind:
    """Guess the kind of raw values from their type: bools, numbers, or anything else."""
    arr = np.asarray(values)
    if arr.dtype.kind == "b":
        return FeatureKind.BOOLEAN
    if arr.dtype.kind in "iuf":
        return FeatureKind.NUMERIC
    if arr.dtype.kind == "O":
        for item in arr.ravel().tolist():
            if _is_missing(item):
                continue
            if isinstance(item, bool):
                return FeatureKind.BOOLEAN
            return FeatureKind.NUMERIC if isinstance(item, int | float) else FeatureKind.CATEGORICAL
    return FeatureKind.CATEGORICAL


def _one_dimensional(values: Any, what: str) -> np.ndarray[Any, Any]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InvalidSample(f"{what}: expected a one-dimensional sequence, got shape {arr.shape}")
    if arr.size == 0:
        raise EmptySample(f"{what}: empty sample")
    return arr


def _object_to_float(arr: np.ndarray[Any, Any], what: str) -> FloatArray:
    out = np.empty(arr.size, dtype=np.float64)
    for i, item in enumerate(arr.tolist()):
        if item is None:
            out[i] = np.nan
        elif isinstance(item, bool) or not isinstance(item, int | float):
            raise InvalidSample(f"{what}: numeric feature got a {type(item).__name__} value")
        else:
            out[i] = float(item)
    return out


def numeric_sample(values: Any, *, what: str = "sample") -> NumericSample:
    """Clean numeric values: drop NaN, infinities and out-of-range magnitudes, count them."""
    arr = _one_dimensional(values, what)
    kind = arr.dtype.kind
    if kind in "iuf":
        data = arr.astype(np.float64, copy=False)
    elif kind == "O":
        data = _object_to_float(arr, what)
    else:
        raise InvalidSample(f"{what}: numeric feature got values of dtype {arr.dtype}")
    keep = np.isfinite(data)
    keep &= np.abs(np.where(keep, data, 0.0)) <= MAX_ABS
    clean = data[keep] if not keep.all() else data.copy()
    n_missing = int(data.size - clean.size)
    if clean.size == 0:
        raise EmptySample(
            f"{what}: no finite values ({n_missing} missing or non-finite)", n_missing=n_missing
        )
    clean.setflags(write=False)
    return NumericSample(values=clean, n_missing=n_missing)


def _is_missing(item: object) -> bool:
    return item is None or (isinstance(item, float) and math.isnan(item))


def _label(item: object, what: str) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, bool | int | np.integer | np.bool_):
        return str(item)
    if isinstance(item, float | np.floating):
        return str(int(item)) if float(item).is_integer() else repr(float(item))
    raise InvalidSample(f"{what}: categorical feature got a {type(item).__name__} value")


def _boolean_label(item: object, what: str) -> str:
    if isinstance(item, bool | np.bool_):
        return "true" if item else "false"
    if isinstance(item, int | float | np.integer | np.floating) and item in (0, 1):
        return "true" if item == 1 else "false"
    if isinstance(item, str) and item.strip().lower() in _TRUE | _FALSE:
        return "true" if item.strip().lower() in _TRUE else "false"
    raise InvalidSample(f"{what}: boolean feature got the value {item!r}")


def _count(items: Iterable[object], label: Any, what: str) -> tuple[Counter[str], int]:
    counts: Counter[str] = Counter()
    missing = 0
    for item in items:
        if _is_missing(item):
            missing += 1
        else:
            counts[label(item, what)] += 1
    return counts, missing


def category_counts(
    values: Any, *, kind: FeatureKind, what: str = "sample"
) -> tuple[tuple[str, ...], IntArray, int]:
    """Count categories (sorted labels, counts, missing count) of a categorical or boolean sample.

    Labels are strings; integral numbers become ``"3"`` and booleans ``"true"``/``"false"``
    for boolean features, so a reference and a window sent with different JSON types agree.
    """
    arr = _one_dimensional(values, what)
    if kind is FeatureKind.NUMERIC:
        raise InvalidSample(f"{what}: numeric data is not a categorical sample")
    if arr.dtype.kind in "US" and kind is FeatureKind.CATEGORICAL:
        labels, freq = np.unique(arr.astype(str), return_counts=True)
        counts: Counter[str] = Counter(dict(zip(labels.tolist(), freq.tolist(), strict=True)))
        missing = 0
    else:
        label = _boolean_label if kind is FeatureKind.BOOLEAN else _label
        counts, missing = _count(arr.tolist(), label, what)
    if not counts:
        raise EmptySample(f"{what}: no usable values ({missing} missing)", n_missing=missing)
    if kind is FeatureKind.BOOLEAN:
        counts.update({"false": 0, "true": 0})
    names = tuple(sorted(counts))
    return names, np.array([counts[k] for k in names], dtype=np.int64), missing
