"""Request and response bodies of the ingestion endpoints (metrics, samples, outcomes).

One pydantic model validates a whole batch. Checks that need the product (its feature schema)
or the receive time (future event times) happen in the service, with the same error shape.
"""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, NotRequired, Self

from pydantic import (
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    model_validator,
    with_config,
)
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict

from retrigger.schemas import InputSchema, NoNul, Schema, Timestamp, reject_nul

MAX_BATCH_ROWS = 100_000
"""Most points, rows or outcomes one request may carry (more is a 422; split the batch)."""


EventTime = Annotated[
    Timestamp,
    Field(
        description="RFC 3339 with a zone, between 1970-01-01T00:00:00Z and "
        "9999-12-31T23:59:59Z; default: when the request arrived. At most "
        "`RETRIGGER_SIGNALS_MAX_FUTURE_SECONDS` (5 min) ahead of the server clock.",
        examples=["2026-11-28T21:00:00Z"],
    ),
]
ModelVersion = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128),
    NoNul,
    Field(description="Version of the model that served.", examples=["2026-11-01.3"]),
]
BatchKey = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$"),
    Field(
        description="Idempotency key (same as the `Idempotency-Key` header): a retried batch "
        "with the same key and body is stored once and answered alike.",
        examples=["gw-7f3a-000123"],
    ),
]
MetricName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=200, pattern=r"^[A-Za-z_:][A-Za-z0-9_:./-]*$"),
    Field(examples=["accuracy"]),
]
LabelName = Annotated[
    str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
]
LabelValue = Annotated[str, StringConstraints(max_length=1000), NoNul]


METRICS_EXAMPLE: dict[str, Any] = {
    "points": [
        {"name": "accuracy", "value": 0.912, "time": "2026-11-28T21:00:00Z"},
        {
            "name": "latency_p99_ms",
            "value": 41.5,
            "model_version": "2026-11-01.3",
            "labels": {"region": "eu-west-1"},
        },
    ]
}
SAMPLES_ROWS_EXAMPLE: dict[str, Any] = {
    "rows": [
        {"amount": 12.5, "country": "DE", "is_new_device": False},
        {"amount": 980.0, "country": "FR", "is_new_device": None},
    ],
    "time": "2026-11-28T21:00:00Z",
    "model_version": "2026-11-01.3",
}
SAMPLES_COLUMNS_EXAMPLE: dict[str, Any] = {
    "columns": {
        "amount": [12.5, 980.0, None],
        "country": ["DE", "FR", "DE"],
        "is_new_device": [False, True, False],
    },
}
OUTCOMES_EXAMPLE: dict[str, Any] = {
    "outcomes": [
        {
            "prediction_id": "txn-000123",
            "prediction": 1,
            "score": 0.87,
            "predicted_at": "2026-11-28T21:00:00Z",
        },
        {"prediction_id": "txn-000099", "label": 0, "labelled_at": "2026-11-28T21:04:00Z"},
    ],
    "task": "classification",
}


# a TypedDict, not a model: a batch holds up to 100,000 points and validating into plain dicts is
# several times faster than building a model instance per point (same checks, same errors)
@with_config(ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False))
class MetricPointIn(TypedDict):
    """One metric value at an event time."""

    name: MetricName
    value: Annotated[float, Field(description="A finite number (NaN and infinities are refused).")]
    time: NotRequired[EventTime | None]
    model_version: NotRequired[ModelVersion | None]
    labels: NotRequired[Annotated[dict[LabelName, LabelValue], Field(max_length=32)] | None]


class MetricBatchIn(InputSchema):
    """A batch of metric points, stored all or nothing."""

    model_config = ConfigDict(json_schema_extra={"examples": [METRICS_EXAMPLE]})

    points: list[MetricPointIn] = Field(min_length=1, max_length=MAX_BATCH_ROWS)
    batch_id: BatchKey | None = None


class SampleBatchIn(InputSchema):
    """Production feature rows, row-wise (`rows`) or columnar (`columns`), one event time."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [SAMPLES_ROWS_EXAMPLE, SAMPLES_COLUMNS_EXAMPLE]}
    )

    rows: list[dict[str, Any]] | None = Field(
        None,
        min_length=1,
        max_length=MAX_BATCH_ROWS,
        description="One object per row: feature name to value (`null` = missing).",
    )
    columns: (
        Annotated[
            dict[str, Annotated[list[Any], Field(min_length=1, max_length=MAX_BATCH_ROWS)]],
            Field(min_length=1, max_length=2000),
        ]
        | None
    ) = Field(None, description="Feature name to its values, all of the same length.")
    time: EventTime | None = None
    model_version: ModelVersion | None = None
    batch_id: BatchKey | None = None

    @model_validator(mode="after")
    def _one_layout(self) -> Self:
        if (self.rows is None) == (self.columns is None):
            raise ValueError("send exactly one of `rows` or `columns`")
        return self


class Task(StrEnum):
    classification = "classification"
    regression = "regression"


MAX_OUTCOME_TEXT = 256
MAX_OUTCOME_MAGNITUDE = 1e307
"""Largest absolute numeric prediction or label: below half the float64 maximum, so the error
``|prediction - label|`` of any two accepted numbers is finite (1e308 and -1e308 would make it
infinite and leave the concept-drift detectors and error metrics nothing to compute with)."""


def _outcome_value(value: Any) -> bool | int | float | str:
    # one validator instead of a union: a bad value gets one error, not one per union member
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise PydanticCustomError(
                "finite_number", "must be a finite number (NaN, Infinity are refused)"
            )
        if not -MAX_OUTCOME_MAGNITUDE <= value <= MAX_OUTCOME_MAGNITUDE:
            raise PydanticCustomError(
                "number_range",
                "must be at most 1e307 in absolute value (the error with its pair must stay "
                "finite)",
            )
        return value
    if isinstance(value, str):
        text = reject_nul(value.strip())
        if len(text) > MAX_OUTCOME_TEXT:
            raise PydanticCustomError(
                "string_too_long", f"must be at most {MAX_OUTCOME_TEXT} characters"
            )
        return text
    raise PydanticCustomError("outcome_type", "must be a string, a number or a boolean")


OutcomeValue = Annotated[
    bool | int | float | str,
    PlainValidator(_outcome_value, json_schema_input_type=bool | int | float | str),
    Field(description="A class (string, integer, boolean) or a number."),
]


class OutcomeIn(InputSchema):
    """A prediction, its label, or both, keyed by the caller's prediction id."""

    prediction_id: Annotated[str, StringConstraints(min_length=1, max_length=128), NoNul] = Field(
        examples=["txn-000123"]
    )
    prediction: OutcomeValue | None = Field(None, description="Predicted class or value.")
    label: OutcomeValue | None = Field(None, description="Observed class or value.")
    score: float | None = Field(
        None, ge=0, le=1, description="Predicted probability of the positive class."
    )
    predicted_at: EventTime | None = None
    labelled_at: EventTime | None = None
    model_version: ModelVersion | None = None

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.prediction is None and self.label is None and self.score is None:
            raise ValueError("an outcome needs a prediction, a label or a score")
        return self


class OutcomeBatchIn(InputSchema):
    """Prediction/label pairs; labels may come in later batches and join by prediction id."""

    model_config = ConfigDict(json_schema_extra={"examples": [OUTCOMES_EXAMPLE]})

    outcomes: list[OutcomeIn] = Field(min_length=1, max_length=MAX_BATCH_ROWS)
    task: Task | None = Field(
        None,
        description="How errors are computed: `classification` (0/1 mismatch) or `regression` "
        "(absolute error). Default: numbers are regression, anything else classification.",
    )
    batch_id: BatchKey | None = None


class IngestResult(Schema):
    """What a batch did; a retried batch (same idempotency key) gets the same answer."""

    accepted: int = Field(description="Points, rows or outcomes stored by this batch.")
    duplicate: bool = Field(
        False, description="True when this is a retry of a batch already stored (nothing new)."
    )
    batch_id: str | None = Field(None, description="The idempotency key, if one was given.")
    received_at: datetime


class MetricsResult(IngestResult):
    pass


class SamplesResult(IngestResult):
    sample_batch_id: int = Field(description="Id of the stored sample batch.")
    missing: dict[str, int] = Field(
        default_factory=dict, description="Missing values (null or absent) per feature."
    )
    out_of_range: dict[str, int] = Field(
        default_factory=dict,
        description="Values outside the schema's min/max or categories, per feature: stored "
        "(that is drift, not bad input), counted here for visibility.",
    )


class OutcomesResult(IngestResult):
    inserted: int = Field(description="New prediction ids.")
    updated: int = Field(description="Prediction ids already known (e.g. a late label).")
    joined: int = Field(description="Outcomes that got both prediction and label in this batch.")
