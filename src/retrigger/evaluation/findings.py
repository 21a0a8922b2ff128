"""What one rule's evaluation reports: a JSON-safe ``Finding``, plus the helpers that keep it so.

``json_safe`` turns numpy scalars, datetimes, enums and models into JSON values and every NaN
or infinity into ``None``; findings apply it on construction, so ``as_dict()`` always survives
``json.dumps(..., allow_nan=False)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import Enum, StrEnum
from typing import Any

import numpy as np
from pydantic import BaseModel

__all__ = [
    "Finding",
    "FindingWindow",
    "RuleStatus",
    "as_utc",
    "json_safe",
    "number",
    "percent",
    "span",
]


class RuleStatus(StrEnum):
    """Verdict of one rule at one evaluation."""

    HOLDS = "holds"
    NOT_HOLDS = "not_holds"
    INSUFFICIENT_DATA = "insufficient_data"


def json_safe(value: Any) -> Any:
    """``value`` as plain JSON data: non-finite floats become ``None``, times ISO 8601 text."""
    if isinstance(value, Enum):
        return json_safe(value.value)
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number_ = float(value)
        return number_ if math.isfinite(number_) else None
    if isinstance(value, np.datetime64):
        moment = value.astype("datetime64[us]").item() if not np.isnat(value) else None
        return json_safe(moment) if isinstance(moment, datetime) else None
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return json_safe(value.total_seconds())
    if isinstance(value, BaseModel):
        return json_safe(value.model_dump(mode="python"))
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return [json_safe(item) for item in value.tolist()]
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted((json_safe(item) for item in value), key=repr)
    return str(value)


def as_utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is read as UTC."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def number(value: float | None) -> str:
    """A value for a human sentence: three significant digits, ``n/a`` when undefined."""
    if value is None or not math.isfinite(value):
        return "n/a"
    return f"{value:.3g}"


def percent(fraction: float) -> str:
    """``0.069`` as ``6.9%``."""
    return f"{100 * fraction:.3g}%"


def span(delta: timedelta) -> str:
    """A duration for a human sentence: ``35.2 days``, ``5.5 hours``, ``12 minutes``."""
    seconds = delta.total_seconds()
    if abs(seconds) >= 86_400:
        return f"{seconds / 86_400:.1f} days"
    if abs(seconds) >= 3_600:
        return f"{seconds / 3_600:.1f} hours"
    return f"{seconds / 60:.0f} minutes"


@dataclass(frozen=True, slots=True)
class FindingWindow:
    """The data a finding looked at: bounds (UTC) and number of observations."""

    start: datetime | None = None
    end: datetime | None = None
    n: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """``{start, end, n}`` with ISO 8601 times."""
        return {"start": json_safe(self.start), "end": json_safe(self.end), "n": self.n}


@dataclass(frozen=True)
class Finding:
    """One rule's verdict at one evaluation, with everything needed to explain it.

    ``breach`` is the raw breach of a ``performance`` rule at this evaluation (``None`` when
    it could not be decided, and for other rule types): the service stores it and passes it
    back as ``PerformanceInput.history``. ``new_state`` is the concept-drift detector state to
    pass back as ``ConceptDriftInput.state``. ``inhibited_by`` lists the holding rules that
    suppress this one (set by the engine); an inhibited finding never counts.
    """

    rule_id: str
    type: str
    status: RuleStatus
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    breach: bool | None = None
    window: FindingWindow = field(default_factory=FindingWindow)
    new_state: dict[str, Any] | None = None
    inhibited_by: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "details", json_safe(self.details))
        if self.new_state is not None:
            object.__setattr__(self, "new_state", json_safe(self.new_state))

    @property
    def holds(self) -> bool:
        """Whether the rule holds (inhibited or not)."""
        return self.status is RuleStatus.HOLDS

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (safe for ``json.dumps(..., allow_nan=False)``)."""
        return {
            "rule_id": self.rule_id,
            "type": self.type,
            "status": self.status.value,
            "summary": self.summary,
            "details": self.details,
            "breach": self.breach,
            "window": self.window.as_dict(),
            "new_state": self.new_state,
            "inhibited_by": list(self.inhibited_by),
        }
