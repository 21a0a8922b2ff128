"""The one duration and window syntax of policy documents: parse, validate, print canonically.

Durations are whole numbers with a unit, largest unit first, each unit at most once:
``30s``, ``15m``, ``24h``, ``7d``, ``2w``, ``1d12h``. Windows are a duration (``7d``), a count
of the most recent observations (``last:10000``), or ``since_retrain``. The canonical string
never uses weeks (``2w`` prints as ``14d``) so every duration has exactly one spelling.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated, Any, Final

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

__all__ = [
    "MAX_DURATION",
    "MAX_WINDOW_COUNT",
    "CountWindow",
    "Duration",
    "DurationError",
    "SinceRetrainWindow",
    "TimeWindow",
    "Window",
    "WindowSpec",
    "format_duration",
    "format_window",
    "parse_duration",
    "parse_window",
]

_UNIT_SECONDS: Final = {"w": 604_800, "d": 86_400, "h": 3_600, "m": 60, "s": 1}
_CANONICAL_UNITS: Final = ("d", "h", "m", "s")
_DURATION_RE: Final = re.compile(r"(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_COUNT_PREFIX: Final = "last:"
_SINCE_RETRAIN: Final = "since_retrain"

MAX_DURATION: Final = timedelta(days=3660)
"""Upper bound of any duration (about ten years): larger values are almost surely typos."""
MAX_WINDOW_COUNT: Final = 100_000_000
"""Upper bound of ``last:N`` windows."""

DURATION_PATTERN: Final = r"^(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?$"
WINDOW_PATTERN: Final = rf"{DURATION_PATTERN}|^last:\d+$|^since_retrain$"
_SYNTAX_HINT: Final = (
    "expected whole numbers with units w, d, h, m, s, largest first, e.g. '30m', '24h', '7d', "
    "'1d12h'"
)


class DurationError(ValueError):
    """A duration or window string that does not follow the documented syntax."""


def parse_duration(text: str) -> timedelta:
    """Parse ``'1d12h'`` into a positive :class:`~datetime.timedelta`."""
    if not isinstance(text, str):
        raise DurationError(f"a duration must be a string, {_SYNTAX_HINT}")
    value = text.strip()
    match = _DURATION_RE.fullmatch(value)
    if not value or match is None:
        raise DurationError(f"invalid duration {text!r}: {_SYNTAX_HINT}")
    seconds = sum(
        int(amount) * _UNIT_SECONDS[unit]
        for amount, unit in zip(match.groups(), _UNIT_SECONDS, strict=True)
        if amount is not None
    )
    return _checked(timedelta(seconds=seconds), text)


def format_duration(value: timedelta) -> str:
    """Print a duration canonically: days, hours, minutes, seconds, zero parts omitted."""
    _checked(value, _loose_text(value))
    remaining = int(value.total_seconds())
    parts: list[str] = []
    for unit in _CANONICAL_UNITS:
        amount, remaining = divmod(remaining, _UNIT_SECONDS[unit])
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)


def _checked(value: timedelta, shown: object) -> timedelta:
    if value <= timedelta(0):
        raise DurationError(f"duration {shown!s} must be greater than zero")
    if value % timedelta(seconds=1):
        raise DurationError(f"duration {shown!s} must be a whole number of seconds")
    if value > MAX_DURATION:
        raise DurationError(f"duration {shown!s} exceeds the maximum of {MAX_DURATION.days}d")
    return value


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """The signals whose event time lies within ``duration`` before the evaluation."""

    duration: timedelta

    def __str__(self) -> str:
        return format_duration(self.duration)


@dataclass(frozen=True, slots=True)
class CountWindow:
    """The ``count`` most recent observations, whatever their age."""

    count: int

    def __str__(self) -> str:
        return f"{_COUNT_PREFIX}{self.count}"


@dataclass(frozen=True, slots=True)
class SinceRetrainWindow:
    """Every signal received since the deployed model version was trained."""

    def __str__(self) -> str:
        return _SINCE_RETRAIN


WindowSpec = TimeWindow | CountWindow | SinceRetrainWindow


def parse_window(text: str) -> WindowSpec:
    """Parse ``'7d'``, ``'last:10000'`` or ``'since_retrain'``."""
    if not isinstance(text, str):
        raise DurationError(
            "a window must be a string such as '7d', 'last:10000' or 'since_retrain'"
        )
    value = text.strip()
    if value == _SINCE_RETRAIN:
        return SinceRetrainWindow()
    if value.startswith(_COUNT_PREFIX):
        digits = value.removeprefix(_COUNT_PREFIX)
        if not digits.isascii() or not digits.isdigit():
            raise DurationError(f"invalid window {text!r}: expected 'last:N' with N a whole number")
        count = int(digits)
        if not 0 < count <= MAX_WINDOW_COUNT:
            raise DurationError(
                f"window {text!r}: the count must be between 1 and {MAX_WINDOW_COUNT}"
            )
        return CountWindow(count)
    try:
        return TimeWindow(parse_duration(value))
    except DurationError as exc:
        if _DURATION_RE.fullmatch(value) and value:
            raise  # well formed but out of range: the duration message is the precise one
        raise DurationError(
            f"invalid window {text!r}: expected a duration such as '7d', 'last:N' or "
            "'since_retrain'"
        ) from exc


def format_window(window: WindowSpec) -> str:
    """Print a window canonically."""
    return str(window)


def _pydantic_error(exc: DurationError, kind: str) -> PydanticCustomError:
    # The message goes through the context so braces typed by the user are never interpreted.
    return PydanticCustomError(f"invalid_{kind}", "{reason}", {"reason": str(exc)})


def _validate_duration(value: Any) -> timedelta:
    try:
        if isinstance(value, timedelta):
            return _checked(value, _loose_text(value))
        return parse_duration(value)
    except DurationError as exc:
        raise _pydantic_error(exc, "duration") from exc


def _validate_window(value: Any) -> WindowSpec:
    if isinstance(value, TimeWindow | CountWindow | SinceRetrainWindow):
        return value
    try:
        return parse_window(value)
    except DurationError as exc:
        raise _pydantic_error(exc, "window") from exc


def _loose_text(value: timedelta) -> str:
    """Best-effort text of any timedelta, for error messages only."""
    return f"{value.total_seconds():g}s"


class _DurationSchema:
    """Pydantic hooks: strings in, :class:`timedelta` inside, canonical strings out in JSON."""

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            _validate_duration,
            serialization=core_schema.plain_serializer_function_ser_schema(
                format_duration, when_used="json"
            ),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "type": "string",
            "pattern": DURATION_PATTERN,
            "examples": ["30m", "24h", "7d", "1d12h"],
            "description": "Duration: whole numbers with units w, d, h, m, s, largest first.",
        }


class _WindowSchema:
    """Pydantic hooks for windows: strings in, window objects inside, strings out in JSON."""

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            _validate_window,
            # Always a string: pydantic would turn the dataclass into a dict in Python mode.
            serialization=core_schema.plain_serializer_function_ser_schema(format_window),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "type": "string",
            "pattern": WINDOW_PATTERN,
            "examples": ["7d", "last:10000", "since_retrain"],
            "description": "Window: a duration, 'last:N' (count) or 'since_retrain'.",
        }


Duration = Annotated[timedelta, _DurationSchema]
"""A positive whole-second duration in pydantic models, written ``'7d'``."""

Window = Annotated[WindowSpec, _WindowSchema]
"""A window in pydantic models, written ``'7d'``, ``'last:10000'`` or ``'since_retrain'``;
validated to a window object, dumped as its canonical string in every mode."""
