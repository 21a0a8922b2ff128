"""Shared machinery of the streaming drift detectors: parameters, input hygiene, JSON state.

Concrete detectors implement a scalar step and a vectorised block kernel over these hooks.
"""

from __future__ import annotations

import abc
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Self, TypeVar, cast

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, ValidationError

from retrigger.errors import InvalidConfig, InvalidSample

__all__ = [
    "MAX_ABS",
    "STATE_FORMAT",
    "DetectionResult",
    "DetectorParams",
    "DetectorStats",
    "DriftDetector",
    "FloatArray",
    "IntArray",
]

STATE_FORMAT = 1
"""Version of the ``to_state`` document layout; bumped on incompatible changes."""

MAX_ABS = 1e100
"""Largest accepted magnitude of an observation: beyond it sums of squares could overflow."""

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
_NO_INDICES: IntArray = np.zeros(0, dtype=np.int64)


class DetectorParams(BaseModel):
    """Base of every detector's parameter model: immutable, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DetectorStats(BaseModel):
    """Base of every detector's JSON state payload (the ``stats`` member of ``to_state``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


P = TypeVar("P", bound=DetectorParams)
S = TypeVar("S", bound=DetectorStats)


@dataclass(frozen=True, slots=True)
class DetectionResult:
    """Indices (into the batch given to ``update_many``) where drifts and warnings were flagged.

    ``warnings`` lists every index after which the detector's ``warning_detected`` flag was
    set, exactly as River reports it; detectors without a warning zone always return ``[]``.
    """

    drifts: list[int] = field(default_factory=list)
    warnings: list[int] = field(default_factory=list)


def _validation_errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]


def _validate_model(model: type[BaseModel], data: Any, what: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise InvalidConfig(f"invalid {what}", errors=_validation_errors(exc)) from exc


def invalid_state(message: str) -> InvalidConfig:
    """The error raised by ``from_state`` for a well-formed but inconsistent state."""
    return InvalidConfig(f"invalid detector state: {message}")


def coerce_one(x: object, binary: bool) -> float:
    """Validate one observation and return it as a float (``InvalidSample`` when unusable)."""
    if isinstance(x, str | bytes) or not isinstance(x, numbers.Real | np.bool_):
        raise InvalidSample(f"observation must be a real number, got {type(x).__name__}")
    v = float(x)
    if not math.isfinite(v) or abs(v) > MAX_ABS:
        raise InvalidSample(f"observation must be finite and at most {MAX_ABS:g} in magnitude")
    if binary and v != 0.0 and v != 1.0:
        raise InvalidSample(f"binary detector expects 0/1 (or bool) observations, got {v!r}")
    return v


def coerce_many(xs: object, binary: bool) -> FloatArray:
    """Validate a batch (sequence or 1-D array of bool/int/float) and return a float64 copy."""
    try:
        arr = np.asarray(xs)
    except (TypeError, ValueError) as exc:
        raise InvalidSample(f"observations are not an array of numbers: {exc}") from exc
    if arr.ndim != 1:
        raise InvalidSample(f"observations must be one-dimensional, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "biuf":
        raise InvalidSample(f"observations must be bool, int or float, got dtype {arr.dtype}")
    out = np.array(arr, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(out) <= MAX_ABS)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidSample(
            f"observation {i} ({out[i]!r}) is not finite or exceeds {MAX_ABS:g} in magnitude",
            errors=[{"loc": [i]}],
        )
    if binary:
        off = (out != 0.0) & (out != 1.0)
        if off.any():
            i = int(np.flatnonzero(off)[0])
            raise InvalidSample(
                f"binary detector expects 0/1 (or bool) observations; observation {i} is "
                f"{out[i]!r}",
                errors=[{"loc": [i]}],
            )
    return out


class DriftDetector(abc.ABC, Generic[P, S]):
    """Base class of the streaming drift detectors.

    A subclass sets ``key``, ``params_model`` and ``stats_model`` and implements four hooks:
    ``_reset_stats`` (fresh statistics), ``_step`` (one observation, River's exact arithmetic),
    ``_run_block`` (the same over a block, vectorised) and ``_dump_stats``/``_load_stats``.

    Semantics shared by every detector: after an update that signals a drift the statistics are
    discarded at once (River discards them at the start of the next update, which yields the same
    indices); ``drift_detected``/``warning_detected`` keep describing the last update until the
    next one.
    """

    key: ClassVar[str]
    params_model: ClassVar[type[DetectorParams]]
    stats_model: ClassVar[type[DetectorStats]]
    binary: ClassVar[bool] = False
    has_warnings: ClassVar[bool] = False
    _first_block: ClassVar[int] = 256
    _max_block: ClassVar[int] = 1 << 16

    def __init__(self, params: P | Mapping[str, Any] | None = None, /, **overrides: Any) -> None:
        if isinstance(params, DetectorParams) and not overrides:
            if not isinstance(params, self.params_model):
                raise InvalidConfig(f"{self.key}: expected {self.params_model.__name__}")
            validated: BaseModel = params
        else:
            if params is not None and not isinstance(params, BaseModel | Mapping):
                raise InvalidConfig(f"{self.key} parameters must be a mapping")
            data = params.model_dump() if isinstance(params, BaseModel) else dict(params or {})
            data.update(overrides)
            validated = _validate_model(self.params_model, data, f"{self.key} parameters")
        self.params: P = cast(P, validated)
        self._drift = False
        self._warning = False
        self._reset_stats()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.model_dump().items())
        return f"{type(self).__name__}({args})"

    @property
    def drift_detected(self) -> bool:
        """Whether the last update signalled a drift."""
        return self._drift

    @property
    def warning_detected(self) -> bool:
        """Whether the detector was in its warning zone after the last update."""
        return self._warning

    def reset(self) -> None:
        """Forget everything seen so far (River's ``_reset``); parameters are kept."""
        self._drift = False
        self._warning = False
        self._reset_stats()

    def update(self, x: float) -> bool:
        """Feed one observation; return whether it signals a drift.

        Raises ``InvalidSample`` (leaving the detector untouched) for NaN, infinities, values
        beyond ``MAX_ABS`` (1e100), non-numbers and, for binary detectors, anything other than
        0/1/bool. Invalid observations are never skipped silently.
        """
        v = coerce_one(x, self.binary)
        if self._drift:
            self._drift = False
            self._warning = False
        self._step(v)
        return self._drift

    def update_many(self, xs: Sequence[float] | NDArray[Any]) -> DetectionResult:
        """Feed a batch; same detections as calling ``update`` on each element in order.

        The whole batch is validated first: on ``InvalidSample`` nothing was consumed.
        """
        arr = coerce_many(xs, self.binary)
        drifts: list[int] = []
        warnings: list[IntArray] = []
        pos, block, n = 0, self._first_block, arr.shape[0]
        while pos < n:
            if self._drift:
                self._drift = False
                self._warning = False
            chunk = arr[pos : min(n, pos + block)]
            chunk = chunk[: self._block_limit(chunk)]
            hit, warned = self._run_block(chunk)
            if warned.size:
                warnings.append(warned + pos)
            if hit is None:
                pos += chunk.shape[0]
                block = min(2 * block, self._max_block)
            else:
                drifts.append(pos + hit)
                pos += hit + 1
                block = self._first_block
        flat = np.concatenate(warnings).tolist() if warnings else []
        return DetectionResult(drifts=drifts, warnings=flat)

    def to_state(self) -> dict[str, Any]:
        """The detector as a JSON-compatible document (plain dicts, lists, str, numbers, bool)."""
        return {
            "detector": self.key,
            "format": STATE_FORMAT,
            "params": self.params.model_dump(mode="json"),
            "flags": {"drift": self._drift, "warning": self._warning},
            "stats": self._dump_stats().model_dump(mode="json"),
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Self:
        """Rebuild a detector from ``to_state`` output; it continues the stream identically."""
        if not isinstance(state, Mapping):
            raise InvalidConfig("detector state must be a mapping")
        if state.get("detector") != cls.key:
            raise InvalidConfig(f"state is for detector {state.get('detector')!r}, not {cls.key!r}")
        if state.get("format") != STATE_FORMAT:
            raise InvalidConfig(f"unsupported detector state format {state.get('format')!r}")
        flags = state.get("flags")
        if not isinstance(flags, Mapping) or not all(
            isinstance(flags.get(k), bool) for k in ("drift", "warning")
        ):
            raise InvalidConfig("state flags must hold booleans 'drift' and 'warning'")
        obj = cls(state.get("params") or {})
        stats = cast(S, _validate_model(cls.stats_model, state.get("stats"), f"{cls.key} state"))
        obj._load_stats(stats)
        obj._drift = flags["drift"]
        obj._warning = flags["warning"]
        return obj

    @abc.abstractmethod
    def _reset_stats(self) -> None:
        """Install fresh statistics (flags are handled by the base class)."""

    @abc.abstractmethod
    def _step(self, x: float) -> None:
        """Process one validated observation; set the flags; reset the statistics on drift."""

    @abc.abstractmethod
    def _run_block(self, xs: FloatArray) -> tuple[int | None, IntArray]:
        """Process ``xs`` (non-empty) up to and including the first drift.

        Return the drift offset (``None`` if none, after consuming all of ``xs``) and the offsets
        where the warning flag was set. Flags and statistics end as after ``_step`` calls.
        """

    def _block_limit(self, xs: FloatArray) -> int:
        """How much of ``xs`` to process exactly next (at least 1); override to skip work.

        Any value is correct: a shorter prefix only means the next block starts earlier. Page-
        Hinkley uses a cheap approximate pass to stop just past the likely first detection.
        """
        return len(xs)

    @abc.abstractmethod
    def _dump_stats(self) -> S:
        """The statistics as a pydantic model of JSON-native values."""

    @abc.abstractmethod
    def _load_stats(self, stats: S) -> None:
        """Install statistics produced by ``_dump_stats`` (validate cross-field consistency)."""

    @staticmethod
    def _no_warnings() -> IntArray:
        return _NO_INDICES
