"""Reference upload and read models: raw rows, columnar arrays, or client-side profiles."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import Field, StringConstraints, field_validator, model_validator

from retrigger.schemas import InputSchema, NoNul, Schema, Timestamp

MAX_REFERENCE_ROWS = 2_000_000
MAX_PROFILE_ROWS = 2**31 - 1
"""Most observations one client profile may stand for (what a reference's row count holds)."""


class HistogramIn(InputSchema):
    """Bin edges (increasing) and counts per bin, for a numeric feature."""

    edges: list[float] = Field(min_length=2, max_length=100_001)
    counts: list[float] = Field(min_length=1, max_length=100_000)

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if len(self.counts) != len(self.edges) - 1:
            raise ValueError("counts needs one entry per bin (len(edges) - 1)")
        if any(b <= a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("edges must increase strictly")
        if any(c < 0 for c in self.counts) or sum(self.counts) <= 0:
            raise ValueError("counts must be >= 0 and not all zero")
        if sum(self.counts) > MAX_PROFILE_ROWS:
            raise ValueError(f"counts must total at most {MAX_PROFILE_ROWS}")
        if not math.isfinite(self.edges[-1] - self.edges[0]):
            raise ValueError("the span of the edges (last - first) must be a finite number")
        return self


class QuantilesIn(InputSchema):
    """Quantiles of a numeric feature at probabilities from 0 to 1, and the row count."""

    probabilities: list[float] = Field(min_length=2, max_length=100_001)
    values: list[float] = Field(min_length=2, max_length=100_001)
    n: int = Field(ge=1, le=MAX_PROFILE_ROWS)
    mean: float | None = None
    std: float | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _span(self) -> Self:
        if not math.isfinite(max(self.values) - min(self.values)):
            raise ValueError("the span of the values (max - min) must be a finite number")
        return self


class ProfileIn(InputSchema):
    """Exactly one of: a histogram or quantiles (numeric), or counts per category."""

    histogram: HistogramIn | None = None
    quantiles: QuantilesIn | None = None
    counts: (
        dict[
            Annotated[str, StringConstraints(max_length=256), NoNul],
            Annotated[int, Field(ge=0, le=MAX_PROFILE_ROWS)],
        ]
        | None
    ) = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [k for k in ("histogram", "quantiles", "counts") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of histogram, quantiles or counts")
        return self

    @field_validator("counts")
    @classmethod
    def _total(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        if value is not None and sum(value.values()) > MAX_PROFILE_ROWS:
            raise ValueError(f"counts must total at most {MAX_PROFILE_ROWS}")
        return value


class ReferenceCreate(InputSchema):
    """A baseline: raw `rows`, `columns` (arrays per feature), or per-feature `profiles`."""

    rows: list[dict[str, Any]] | None = Field(None, max_length=MAX_REFERENCE_ROWS)
    columns: dict[str, list[Any]] | None = None
    profiles: dict[str, ProfileIn] | None = Field(
        None, min_length=1, description="Per-feature profiles: at least one feature."
    )
    description: Annotated[str, StringConstraints(max_length=2000), NoNul] | None = None
    model_version: Annotated[str, StringConstraints(max_length=128), NoNul] | None = None
    trained_at: Timestamp | None = Field(
        None, description="When the model this baseline belongs to was trained (staleness)."
    )
    baseline_metrics: dict[Annotated[str, StringConstraints(max_length=63), NoNul], float] = Field(
        default_factory=dict,
        description="Quality of that model on its validation data, e.g. {'accuracy': 0.93}: "
        "the baseline of relative performance thresholds.",
    )
    activate: bool = Field(True, description="Make this the product's active reference.")

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        given = [k for k in ("rows", "columns", "profiles") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of rows, columns or profiles")
        return self

    @field_validator("baseline_metrics")
    @classmethod
    def _finite(cls, value: dict[str, float]) -> dict[str, float]:
        for key, number in value.items():
            if not math.isfinite(number):
                raise ValueError(f"baseline metric {key!r} must be finite")
        return value


class ReferenceFeatureRead(Schema):
    feature: str
    kind: str
    summary: dict[str, Any]


class ReferenceRead(Schema):
    version: int
    active: bool
    source: str
    description: str | None
    model_version: str | None
    trained_at: datetime | None
    baseline_metrics: dict[str, float]
    n_rows: int
    created_by: str
    created_at: datetime
    activated_at: datetime | None
    features: list[ReferenceFeatureRead] = []


class ActivateRequest(InputSchema):
    reason: Annotated[str, Field(min_length=3, max_length=2000)] = Field(
        description="Why this baseline becomes the active one (audited)."
    )
