"""Decision output and the evaluate-now request."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from retrigger.schemas import InputSchema, Schema, Timestamp


class Outcome(StrEnum):
    fired = "fired"
    not_fired = "not_fired"
    suppressed = "suppressed"
    insufficient_data = "insufficient_data"


class Trigger(StrEnum):
    api = "api"  # POST :evaluate
    ingest = "ingest"  # debounced after signals arrived
    schedule = "schedule"  # the periodic scheduler (staleness, cron rules)
    manual = "manual"  # a person asked for a retrain
    backtest = "backtest"


class DecisionSummary(Schema):
    id: int | None
    product: str
    evaluated_at: datetime
    trigger: str
    outcome: Outcome
    reason: str
    suppressed_by: str | None
    requires_approval: bool
    policy_version: int | None
    reference_version: int | None
    fired_rules: list[str]
    repeat_count: int = Field(
        0,
        description="Later scheduled evaluations that came to the same decision and read nothing "
        "new, so none was stored for them: unchanged since evaluated_at, re-evaluated this many "
        "more times.",
    )
    last_repeated_at: datetime | None = Field(
        None, description="When the last of those repeated evaluations ran (null: none)."
    )


class DecisionRead(DecisionSummary):
    """A decision with everything needed to explain and reproduce it."""

    policy_fingerprint: str
    findings: list[dict[str, Any]] = Field(
        description="One per rule: status, summary, statistics, thresholds, window, and for data "
        "drift every feature's test, p-value, effect size and why that test was chosen."
    )
    guards: list[dict[str, Any]] = Field(description="Every guard's verdict, in order.")
    inputs: dict[str, Any] = Field(
        description="Window bounds, row counts and the reference version each rule read."
    )
    created_by: str
    dry_run: bool = False
    run_id: int | None = Field(None, description="The run this decision launched, if any.")


class EvaluateRequest(InputSchema):
    dry_run: bool = Field(
        False, description="Evaluate and return the decision without storing anything."
    )
    policy: dict[str, Any] | None = Field(
        None,
        description="A candidate product policy to evaluate instead of the stored one "
        "(always a dry run).",
    )
    at: Timestamp | None = Field(
        None, description="Evaluate as of this time (dry runs only; default now)."
    )
