"""Alert webhook payloads: Prometheus Alertmanager (webhook version 4) and Grafana alerting.

Both senders add fields over time, so unknown fields are ignored rather than refused (refusing
would make the sender retry a payload that can never succeed). What we keep is common to both.

NUL characters (``\u0000``, which PostgreSQL cannot store) are removed from every string of a
notification rather than refused: a 4xx would drop the alert for good. Times outside the
range every request shares (``retrigger.schemas.Timestamp``) are a 422: no retry can fix them.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    field_validator,
    model_validator,
)

from retrigger.schemas import Schema, Timestamp, strip_nul

MAX_ALERTS = 10_000


class AlertStatus(StrEnum):
    firing = "firing"
    resolved = "resolved"


class AlertSource(StrEnum):
    alertmanager = "alertmanager"
    grafana = "grafana"


Labels = Annotated[dict[str, str], Field(max_length=200)]


def _go_zero_time(value: Any) -> Any:
    # Go's zero time (0001-01-01T00:00:00Z) is how Alertmanager says "not ended"
    if isinstance(value, str) and value.startswith("0001-"):
        return None
    if isinstance(value, datetime) and value.year <= 1:
        return None
    return value


class AlertIn(BaseModel):
    """One alert of a notification (the fields Alertmanager and Grafana share)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    status: AlertStatus
    labels: Labels
    annotations: Labels = Field(default_factory=dict)
    starts_at: Timestamp = Field(alias="startsAt")
    ends_at: Annotated[Timestamp | None, BeforeValidator(_go_zero_time)] = Field(
        None,
        alias="endsAt",
        description="`0001-01-01T00:00:00Z` (Go's zero time) means not ended.",
    )
    generator_url: Annotated[str, Field(max_length=4000)] | None = Field(None, alias="generatorURL")
    fingerprint: Annotated[str, Field(min_length=1, max_length=128)] | None = Field(
        None, description="Alert identity; derived from the labels when a sender omits it."
    )

    @model_validator(mode="after")
    def _identity(self) -> Self:
        if self.fingerprint is None:
            canonical = "\x00".join(f"{k}\x01{v}" for k, v in sorted(self.labels.items()))
            self.fingerprint = hashlib.sha256(canonical.encode()).hexdigest()[:16]
        return self


class AlertmanagerPayload(BaseModel):
    """Alertmanager webhook notification (``version: "4"``)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    version: str = "4"
    group_key: Annotated[str, Field(max_length=10_000)] | None = Field(None, alias="groupKey")
    status: AlertStatus
    receiver: str = ""
    alerts: list[AlertIn] = Field(max_length=MAX_ALERTS)
    truncated_alerts: int = Field(0, alias="truncatedAlerts")
    external_url: str | None = Field(None, alias="externalURL")
    group_labels: dict[str, str] = Field(default_factory=dict, alias="groupLabels")
    common_labels: dict[str, str] = Field(default_factory=dict, alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")

    @model_validator(mode="before")
    @classmethod
    def _strip_nul(cls, data: Any) -> Any:
        return strip_nul(data)

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if value != "4":
            raise ValueError("only Alertmanager webhook payload version 4 is understood")
        return value


class GrafanaPayload(AlertmanagerPayload):
    """Grafana alerting webhook: Alertmanager's shape plus ``orgId``, ``title``, ``state``,
    ``message`` and per-alert ``values``, ``silenceURL``, ``dashboardURL``, ``panelURL``."""

    version: str = "1"
    org_id: int | None = Field(None, alias="orgId")
    title: str | None = None
    state: str | None = None
    message: str | None = None

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        return value  # Grafana sends "1"; its shape has been stable across versions


class WebhookResult(Schema):
    """What a notification did; duplicates and alerts of unknown products are not errors."""

    received: int = Field(description="Alerts in the notification.")
    accepted: int = Field(description="Alert states stored now.")
    duplicates: int = Field(description="Alert states already stored (redelivery, HA peers).")
    ignored: int = Field(
        description="Alerts without the product label, or naming a product this key cannot see."
    )
    ignored_products: list[str] = Field(
        default_factory=list, description="Product names that were ignored (at most 20)."
    )
    # products whose alert state changed: evaluated in the background after the commit
    _changed_product_ids: list[int] = PrivateAttr(default_factory=list)
    # product name -> (alert states stored now, redelivered ones), for the ingestion metrics
    _per_product: dict[str, tuple[int, int]] = PrivateAttr(default_factory=dict)


def payload_example(source: AlertSource) -> dict[str, Any]:
    """A documentation example of a notification."""
    alert: dict[str, Any] = {
        "status": "firing",
        "labels": {"alertname": "ModelDriftHigh", "product": "fraud-scorer", "severity": "page"},
        "annotations": {"summary": "drift score 0.93 on fraud-scorer"},
        "startsAt": "2026-11-28T20:19:19.249Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=drift_score+%3E+0.5",
        "fingerprint": "f441e21660689fb2",
    }
    body: dict[str, Any] = {
        "version": "4",
        "groupKey": '{}:{alertname="ModelDriftHigh"}',
        "status": "firing",
        "receiver": "retrigger",
        "alerts": [alert],
        "truncatedAlerts": 0,
    }
    if source is AlertSource.grafana:
        body.update(version="1", orgId=1, title="[FIRING:1] ModelDriftHigh", state="alerting")
        alert.update(values={"B": 0.93, "C": 1}, silenceURL="", dashboardURL="", panelURL="")
    return body
