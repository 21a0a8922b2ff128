"""Feature columns: check a batch against the feature schema, encode it compactly, decode it.

Pure (numpy, no I/O). Storage format of one feature in one batch, little-endian:

- numeric: float64, NaN = missing;
- boolean: uint8 0/1, 255 = missing;
- categorical: int32 codes into the batch's own category list, -1 = missing.

Values outside a numeric feature's ``min``/``max`` or outside its ``categories`` are stored: that
is drift, which the service exists to notice, not bad input. They are only counted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from retrigger.products.schemas import FeatureKind
from retrigger.schemas import NUL
from retrigger.schemas import format_loc as format_loc  # re-exported for the signals modules
from retrigger.signals.errors import MAX_REPORTED_ERRORS, SignalRejected

FloatArray = npt.NDArray[np.float64]
CodeArray = npt.NDArray[np.int32]

BOOL_MISSING = 255
CODE_MISSING = -1
MAX_CATEGORY_LENGTH = 1024

_F8 = np.dtype("<f8")
_U1 = np.dtype("u1")
_I4 = np.dtype("<i4")
_NONE = type(None)
_NUMBER_TYPES = frozenset({int, float, _NONE})
_BOOL_TYPES = frozenset({bool, _NONE})
_STR_TYPES = frozenset({str, _NONE})

Loc = tuple[str | int, ...]


class ErrorList:
    """Collects field errors up to a cap, then raises them together as one 422."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.total = 0

    def add(self, loc: Loc, msg: str, type_: str) -> None:
        self.total += 1
        if len(self.items) < MAX_REPORTED_ERRORS:
            self.items.append({"loc": list(loc), "msg": msg, "type": type_})

    def raise_if_any(self, what: str) -> None:
        if not self.items:
            return
        first = self.items[0]
        more = f" (and {self.total - 1} more)" if self.total > 1 else ""
        raise SignalRejected(
            f"{what}: {format_loc(first['loc'])}: {first['msg']}{more}", errors=self.items
        )


@dataclass(frozen=True)
class EncodedColumn:
    """One feature of one batch, ready to store."""

    feature: str
    kind: FeatureKind
    n_missing: int
    data: bytes
    categories: list[str] | None = None
    out_of_range: int = 0


@dataclass(frozen=True, eq=False)
class FeatureColumn:
    """The values of one feature over a window, in row order across batches.

    ``values`` is float64 for numeric and boolean features (booleans as 0.0/1.0; NaN = missing)
    and int32 codes into ``categories`` for categorical ones (-1 = missing). Rows of batches that
    did not carry the feature count as missing, so every column of one read has the same length.
    """

    name: str
    kind: FeatureKind
    values: npt.NDArray[Any]
    n_missing: int
    categories: tuple[str, ...] = field(default=())

    @property
    def n_rows(self) -> int:
        """Rows in the window, missing ones included."""
        return int(self.values.shape[0])

    def present(self) -> npt.NDArray[Any]:
        """Non-missing values: floats, or category labels (an object array) for categoricals."""
        if self.kind is FeatureKind.categorical:
            codes = self.values[self.values >= 0]
            labels = np.array(self.categories, dtype=object)
            return cast(npt.NDArray[Any], labels[codes])
        return cast(npt.NDArray[Any], self.values[~np.isnan(self.values)])


# --- checking and encoding ---------------------------------------------------------------------


def _numeric(
    values: list[Any], locate: Callable[[int], Loc], spec: Mapping[str, Any], errors: ErrorList
) -> EncodedColumn | None:
    n = len(values)
    arr: FloatArray | None = None
    if set(map(type, values)) <= _NUMBER_TYPES:
        try:
            arr = np.array(values, dtype=np.float64)  # None becomes NaN
        except OverflowError:  # an integer beyond float range: found again below
            arr = None
    if arr is None:
        arr = np.full(n, np.nan, dtype=np.float64)
        for i, v in enumerate(values):
            if v is None:
                continue
            if isinstance(v, bool) or not isinstance(v, int | float):
                errors.add(locate(i), f"numeric feature got {_json_kind(v)}", "wrong_kind")
            else:
                try:
                    arr[i] = float(v)
                except OverflowError:
                    errors.add(locate(i), "number out of float64 range", "finite_number")
    bad = np.flatnonzero(~np.isfinite(arr))
    for i in bad.tolist():
        if values[i] is not None and isinstance(values[i], float):
            errors.add(
                locate(i), "must be a finite number (NaN, Infinity are refused)", "finite_number"
            )
    present = arr[np.isfinite(arr)]
    out_of_range = 0
    lo, hi = spec.get("min"), spec.get("max")
    if lo is not None:
        out_of_range += int(np.count_nonzero(present < lo))
    if hi is not None:
        out_of_range += int(np.count_nonzero(present > hi))
    return EncodedColumn(
        feature=spec["name"],
        kind=FeatureKind.numeric,
        n_missing=int(bad.size),
        data=np.ascontiguousarray(arr, dtype=_F8).tobytes(),
        out_of_range=out_of_range,
    )


def _boolean(
    values: list[Any], locate: Callable[[int], Loc], spec: Mapping[str, Any], errors: ErrorList
) -> EncodedColumn | None:
    if not set(map(type, values)) <= _BOOL_TYPES:
        for i, v in enumerate(values):
            if v is not None and not isinstance(v, bool):
                errors.add(locate(i), f"boolean feature got {_json_kind(v)}", "wrong_kind")
        return None
    arr = np.fromiter(
        (BOOL_MISSING if v is None else v for v in values), dtype=_U1, count=len(values)
    )
    return EncodedColumn(
        feature=spec["name"],
        kind=FeatureKind.boolean,
        n_missing=int(np.count_nonzero(arr == BOOL_MISSING)),
        data=arr.tobytes(),
    )


def _categorical(
    values: list[Any], locate: Callable[[int], Loc], spec: Mapping[str, Any], errors: ErrorList
) -> EncodedColumn | None:
    if not set(map(type, values)) <= _STR_TYPES:
        for i, v in enumerate(values):
            if v is not None and not isinstance(v, str):
                errors.add(locate(i), f"categorical feature got {_json_kind(v)}", "wrong_kind")
        return None
    index: dict[str, int] = {}
    codes = np.fromiter(
        (CODE_MISSING if v is None else index.setdefault(v, len(index)) for v in values),
        dtype=_I4,
        count=len(values),
    )
    categories = list(index)
    for code, label in enumerate(categories):
        if len(label) > MAX_CATEGORY_LENGTH:
            i = int(np.flatnonzero(codes == code)[0])
            errors.add(
                locate(i), f"category longer than {MAX_CATEGORY_LENGTH} characters", "too_long"
            )
        if NUL in label:  # PostgreSQL cannot store it; checked once per distinct label
            i = int(np.flatnonzero(codes == code)[0])
            errors.add(locate(i), "must not contain the NUL character (\\u0000)", "nul_character")
    out_of_range = 0
    expected = spec.get("categories")
    if expected is not None:
        known = set(expected)
        unknown = np.array([c not in known for c in categories] + [False], dtype=bool)
        out_of_range = int(np.count_nonzero(unknown[codes]))  # code -1 hits the False sentinel
    return EncodedColumn(
        feature=spec["name"],
        kind=FeatureKind.categorical,
        n_missing=int(np.count_nonzero(codes == CODE_MISSING)),
        data=codes.tobytes(),
        categories=categories,
        out_of_range=out_of_range,
    )


_ENCODERS = {
    FeatureKind.numeric: _numeric,
    FeatureKind.boolean: _boolean,
    FeatureKind.categorical: _categorical,
}


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _row_loc(name: str) -> Callable[[int], Loc]:
    return lambda i: ("body", "rows", i, name)


def _column_loc(name: str) -> Callable[[int], Loc]:
    return lambda i: ("body", "columns", name, i)


def encode_rows(
    rows: Sequence[Mapping[str, Any]], features: Sequence[Mapping[str, Any]]
) -> list[EncodedColumn]:
    """Check row-wise samples against the feature schema and encode one column per feature.

    Features that no row mentions are not stored (reads count them as missing). Unknown
    features and values of the wrong kind are reported together, in one 422.
    """
    errors = ErrorList()
    schema = {f["name"]: f for f in features}
    seen: set[str] = set()
    for i, row in enumerate(rows):
        if not schema.keys() >= row.keys():
            for name in sorted(row.keys() - schema.keys()):
                errors.add(("body", "rows", i, name), "unknown feature", "unknown_feature")
        seen.update(row.keys())
    out: list[EncodedColumn] = []
    for name, spec in schema.items():
        if name not in seen:
            continue
        values = [row.get(name) for row in rows]
        encoded = _ENCODERS[FeatureKind(spec["kind"])](values, _row_loc(name), spec, errors)
        if encoded is not None:
            out.append(encoded)
    errors.raise_if_any("samples rejected")
    return out


def encode_columns(
    columns: Mapping[str, Sequence[Any]], features: Sequence[Mapping[str, Any]]
) -> tuple[int, list[EncodedColumn]]:
    """Check columnar samples (equal lengths, known features) and encode them; returns n_rows.

    Every problem (unknown feature, length, wrong kind) is reported together, in one 422.
    """
    errors = ErrorList()
    schema = {f["name"]: f for f in features}
    names = list(columns)
    n_rows = len(columns[names[0]])
    for name in names:
        if name not in schema:
            errors.add(("body", "columns", name), "unknown feature", "unknown_feature")
        elif len(columns[name]) != n_rows:
            errors.add(
                ("body", "columns", name),
                f"has {len(columns[name])} values, expected {n_rows} (as '{names[0]}')",
                "length_mismatch",
            )
    out: list[EncodedColumn] = []
    for name in names:
        if name not in schema:
            continue
        values = columns[name]
        encoded = _ENCODERS[FeatureKind(schema[name]["kind"])](
            values if isinstance(values, list) else list(values),
            _column_loc(name),
            schema[name],
            errors,
        )
        if encoded is not None:
            out.append(encoded)
    errors.raise_if_any("samples rejected")
    return n_rows, out


# --- decoding ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredColumn:
    """One stored column as read back: what ``concat`` needs."""

    kind: str
    data: bytes
    categories: list[str] | None


def concat(
    name: str,
    kind: FeatureKind,
    parts: Sequence[tuple[int, int, StoredColumn | None]],
) -> FeatureColumn:
    """Join one feature's batches in order; each part is (n_rows, rows to skip, column or None).

    A batch without the column (``None``) contributes missing values; a stored column of another
    kind than the schema's (the schema changed since) is read as missing too.
    """
    total = sum(n - skip for n, skip, _ in parts)
    if kind is FeatureKind.categorical:
        codes = np.full(total, CODE_MISSING, dtype=np.int32)
        index: dict[str, int] = {}
        pos = 0
        for n, skip, col in parts:
            take = n - skip
            if col is not None and col.kind == kind and col.categories is not None:
                local = np.frombuffer(col.data, dtype=_I4)[skip:]
                remap = np.array(
                    [index.setdefault(c, len(index)) for c in col.categories] + [CODE_MISSING],
                    dtype=np.int32,
                )
                codes[pos : pos + take] = remap[local]  # -1 indexes the trailing sentinel
            pos += take
        return FeatureColumn(
            name=name,
            kind=kind,
            values=codes,
            n_missing=int(np.count_nonzero(codes == CODE_MISSING)),
            categories=tuple(index),
        )
    values = np.full(total, np.nan, dtype=np.float64)
    pos = 0
    for n, skip, col in parts:
        take = n - skip
        if col is not None and col.kind == kind:
            if kind is FeatureKind.numeric:
                values[pos : pos + take] = np.frombuffer(col.data, dtype=_F8)[skip:]
            else:
                raw = np.frombuffer(col.data, dtype=_U1)[skip:]
                chunk = raw.astype(np.float64)
                chunk[raw == BOOL_MISSING] = np.nan
                values[pos : pos + take] = chunk
        pos += take
    return FeatureColumn(
        name=name, kind=kind, values=values, n_missing=int(np.count_nonzero(np.isnan(values)))
    )
