"""Guards: the checks between "a rule fired" and "a run starts", with their defaults."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Self

from pydantic import Field, field_validator, model_validator

from retrigger.policies.durations import Duration
from retrigger.policies.fields import SpecModel
from retrigger.policies.problems import fail
from retrigger.schemas import Timestamp

__all__ = ["Guards", "Mode", "Silence"]


class Mode(StrEnum):
    """``active`` launches runs; ``shadow`` records decisions without launching anything."""

    ACTIVE = "active"
    SHADOW = "shadow"


class Silence(SpecModel):
    """A maintenance window: decisions inside it are suppressed, with the reason recorded."""

    start: Timestamp
    """Start, RFC 3339 with an offset; stored in UTC."""
    end: Timestamp
    """End, after ``start``."""
    reason: str = Field(min_length=1, max_length=500)
    """Why decisions are suppressed, e.g. a data migration."""

    @field_validator("start", "end")
    @classmethod
    def _to_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _end_after_start(self) -> Self:
        if self.end <= self.start:
            fail("Silence", [(("end",), "end_before_start", "must be after start")])
        return self

    def covers(self, moment: datetime) -> bool:
        """Whether ``moment`` (timezone-aware) falls in ``[start, end)``."""
        return self.start <= moment < self.end


class Guards(SpecModel):
    """Checks applied to every fired decision before a run is created."""

    cooldown: Duration | None = Field("1d", validate_default=True)
    """Minimum time between two runs of the product; ``null`` disables it."""
    max_runs: int | None = Field(None, ge=1, le=1000)
    """At most this many runs per ``period``; ``null`` means no budget."""
    period: Duration = Field("7d", validate_default=True)
    """Rolling period of the ``max_runs`` budget."""
    min_new_samples: int = Field(0, ge=0)
    """Labelled rows needed since the last retrain; 0 disables the check."""
    require_approval: bool = False
    """Runs wait in ``awaiting_approval`` until a person approves them."""
    mode: Mode = Mode.ACTIVE
    """``shadow`` evaluates and records decisions but never launches a run."""
    silences: list[Silence] = Field(default_factory=list, max_length=100)
    """Maintenance windows during which fired decisions are suppressed."""
