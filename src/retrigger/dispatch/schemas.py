"""Connection and run input/output; secrets appear only as references."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AnyHttpUrl, Field, JsonValue, StringConstraints

from retrigger.dispatch.lifecycle import RunStatus
from retrigger.dispatch.orchestrators.base import AuthType
from retrigger.schemas import InputSchema, Schema, Slug


class AuthIn(InputSchema):
    type: AuthType = AuthType.NONE
    username: str | None = Field(None, max_length=200)
    secret_ref: str | None = Field(
        None,
        max_length=500,
        description="Where the secret lives: `env:NAME` or `file:/path`. Never the secret itself. "
        "`RETRIGGER_*` variables, /proc, /sys, /dev and retrigger's own database and .env files "
        "are refused; `RETRIGGER_SECRET_ENV_ALLOW` and `RETRIGGER_SECRET_FILE_DIRS` narrow it.",
        examples=["env:AIRFLOW_PASSWORD"],
    )


class ConnectionIn(InputSchema):
    """A connection as PUT replaces it; POST adds the name."""

    kind: str = Field(max_length=32, examples=["airflow"])
    base_url: AnyHttpUrl = Field(examples=["http://127.0.0.1:8080"])
    auth: AuthIn = Field(default_factory=AuthIn)
    verify_tls: bool = True
    timeout_seconds: float = Field(10.0, gt=0, le=300)
    options: dict[str, JsonValue] = Field(
        default_factory=dict, description="Kind-specific options, e.g. Argo `namespace`."
    )
    description: str = Field("", max_length=2000)
    teams: list[Slug] | None = Field(
        None,
        max_length=100,
        description="Teams whose products may launch on this connection; `[]` makes it "
        "org-wide (every team). Omitted: org-wide on create, unchanged on replace.",
        examples=[["risk-ml"]],
    )


class ConnectionCreate(ConnectionIn):
    name: Slug


class AuthOut(Schema):
    type: str
    username: str | None
    secret_ref: str | None


class ConnectionRead(Schema):
    name: str
    kind: str
    base_url: str
    auth: AuthOut
    verify_tls: bool
    timeout_seconds: float
    options: dict[str, Any]
    description: str
    teams: list[str] = Field(description="Teams that may use it; empty: every team.")
    created_at: datetime
    updated_at: datetime


class RunSummary(Schema):
    id: int
    product: str
    decision_id: int
    state: RunStatus
    connection: str
    kind: str
    pipeline: str
    idempotency_key: str
    external_id: str | None
    external_url: str | None
    attempts: int
    last_error: str | None
    model_version: str | None
    created_at: datetime
    submitted_at: datetime | None
    finished_at: datetime | None


class AttemptRead(Schema):
    number: int
    started_at: datetime
    finished_at: datetime
    result: str
    error_class: str | None
    error: str | None
    worker: str


class TransitionRead(Schema):
    from_state: str | None = Field(serialization_alias="from")
    to_state: str = Field(serialization_alias="to")
    at: datetime
    cause: str
    actor: str


class RunRead(RunSummary):
    """A run with its parameters, attempts and transitions."""

    parameters: dict[str, Any]
    context: dict[str, Any]
    status_detail: str | None
    outputs: dict[str, Any]
    next_attempt_at: datetime | None
    created_by: str
    attempts_log: list[AttemptRead]
    transitions: list[TransitionRead]


class RunAction(InputSchema):
    reason: str = Field(min_length=1, max_length=2000, description="Why; kept in the audit log.")


class RetrainIn(InputSchema):
    reason: str = Field(min_length=1, max_length=2000)
    force: bool = Field(
        False,
        description="Skip every guard (silences, shadow mode, cooldown, budget, minimum new "
        "samples) and approval, but not the one-active-run rule: a product with an active run "
        "answers 409. Org admin keys only.",
    )


MetricName = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class CallbackIn(InputSchema):
    """What a pipeline reports about its run."""

    state: RunStatus = Field(description="`running`, `succeeded`, `failed` or `cancelled`.")
    detail: str | None = Field(None, max_length=2000)
    model_version: str | None = Field(None, max_length=200)
    metrics: dict[MetricName, Annotated[float, Field(allow_inf_nan=False)]] = Field(
        default_factory=dict,
        max_length=100,
        description="Numbers the pipeline measured; merged into `outputs.metrics` of the run.",
    )
    outputs: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="Other results, merged key by key into the run's `outputs`; `metrics` is "
        "reserved for the field above.",
    )
