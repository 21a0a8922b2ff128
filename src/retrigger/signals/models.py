"""Signal tables: metric points, sample batches and their binary columns, outcomes, alerts,
and the idempotency keys of ingested batches.

Every row carries its event time (when it happened, which windows use) and its receive time.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Mapped, mapped_column

from retrigger.db.base import Base, IdMixin
from retrigger.db.types import BigIntId, JSONType, UTCDateTime, utcnow

# JSON scalars where SQL NULL means "not sent" (JSON null would be indistinguishable otherwise)
JSONScalar = sa.JSON(none_as_null=True).with_variant(
    postgresql.JSONB(none_as_null=True), "postgresql"
)


def _product_fk() -> Any:
    return mapped_column(BigIntId, ForeignKey("products.id", ondelete="CASCADE"), nullable=False)


class MetricPoint(IdMixin, Base):
    """One value of a named metric (accuracy, latency, a custom KPI) at an event time."""

    __tablename__ = "metric_points"
    __table_args__ = (
        Index("ix_metric_points_product_id_name_event_time", "product_id", "name", "event_time"),
    )

    product_id: Mapped[int] = _product_fk()
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    value: Mapped[float] = mapped_column(sa.Double(), nullable=False)
    event_time: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    model_version: Mapped[str | None] = mapped_column(String(128), nullable=True)
    labels: Mapped[dict[str, str] | None] = mapped_column(JSONType, nullable=True)


class SampleBatch(IdMixin, Base):
    """One batch of production feature rows; its values live in ``sample_columns``."""

    __tablename__ = "sample_batches"
    __table_args__ = (Index("ix_sample_batches_product_id_event_time", "product_id", "event_time"),)

    product_id: Mapped[int] = _product_fk()
    event_time: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    n_rows: Mapped[int] = mapped_column(Integer, nullable=False)
    model_version: Mapped[str | None] = mapped_column(String(128), nullable=True)


class SampleColumn(Base):
    """The values of one feature in one batch, as a compact little-endian array.

    numeric: float64, NaN = missing; boolean: uint8 0/1, 255 = missing; categorical: int32 codes
    into ``categories`` (the batch's own category list), -1 = missing.
    """

    __tablename__ = "sample_columns"

    batch_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("sample_batches.id", ondelete="CASCADE"), primary_key=True
    )
    feature: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    n_missing: Mapped[int] = mapped_column(Integer, nullable=False)
    data: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    categories: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True)


class Outcome(IdMixin, Base):
    """A prediction and, possibly much later, its label; joined when both are known."""

    __tablename__ = "outcomes"
    __table_args__ = (
        UniqueConstraint("product_id", "prediction_id"),
        Index("ix_outcomes_product_id_event_time", "product_id", "event_time"),
        Index(
            "ix_outcomes_product_id_detector_processed_id",
            "product_id",
            "detector_processed",
            "id",
        ),
    )

    product_id: Mapped[int] = _product_fk()
    prediction_id: Mapped[str] = mapped_column(String(128), nullable=False)
    prediction: Mapped[Any] = mapped_column(JSONScalar, nullable=True)
    label: Mapped[Any] = mapped_column(JSONScalar, nullable=True)
    score: Mapped[float | None] = mapped_column(sa.Double(), nullable=True)
    error: Mapped[float | None] = mapped_column(sa.Double(), nullable=True)
    model_version: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # the prediction time when known, else when the row was first received
    event_time: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    predicted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    labelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    detector_processed: Mapped[bool] = mapped_column(sa.Boolean(), default=False, nullable=False)


class Alert(IdMixin, Base):
    """One state of one alert occurrence, as delivered by Alertmanager or Grafana."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("product_id", "fingerprint", "status", "starts_at"),)

    product_id: Mapped[int] = _product_fk()
    fingerprint: Mapped[str] = mapped_column(String(128), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    labels: Mapped[dict[str, str]] = mapped_column(JSONType, nullable=False)
    annotations: Mapped[dict[str, str]] = mapped_column(JSONType, nullable=False)
    source: Mapped[str] = mapped_column(String(16), nullable=False)
    group_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    generator_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, index=True)


class IngestKey(IdMixin, Base):
    """An idempotency key of an ingested batch, with the request's hash and the answer given."""

    __tablename__ = "signal_idempotency_keys"
    __table_args__ = (UniqueConstraint("product_id", "kind", "key"),)

    product_id: Mapped[int] = _product_fk()
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    key: Mapped[str] = mapped_column(String(255), nullable=False)
    request_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, nullable=False, index=True
    )
