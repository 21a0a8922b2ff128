"""Signals: metric points, sample batches and columns, outcomes, alerts, idempotency keys.

Revision ID: 0003_signals
Revises: 0002_policies
Create Date: 2026-11-28 22:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from retrigger.db.types import UTCDateTime

revision: str = "0003_signals"
down_revision: str | None = "0002_policies"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigIntId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _id() -> sa.Column[int]:
    return sa.Column("id", BigIntId, autoincrement=True, nullable=False)


def _product(table: str) -> list[sa.schema.SchemaItem]:
    return [
        sa.Column("product_id", BigIntId, nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f(f"fk_{table}_product_id_products"),
            ondelete="CASCADE",
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "metric_points",
        _id(),
        *_product("metric_points"),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("event_time", UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("model_version", sa.String(length=128), nullable=True),
        sa.Column("labels", JSONType, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_metric_points")),
    )
    op.create_index(
        "ix_metric_points_product_id_name_event_time",
        "metric_points",
        ["product_id", "name", "event_time"],
    )
    op.create_table(
        "sample_batches",
        _id(),
        *_product("sample_batches"),
        sa.Column("event_time", UTCDateTime(timezone=True), nullable=False),
        sa.Column("received_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("model_version", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sample_batches")),
    )
    op.create_index(
        "ix_sample_batches_product_id_event_time", "sample_batches", ["product_id", "event_time"]
    )
    op.create_table(
        "sample_columns",
        sa.Column("batch_id", BigIntId, nullable=False),
        sa.Column("feature", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("n_missing", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("categories", JSONType, nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"],
            ["sample_batches.id"],
            name=op.f("fk_sample_columns_batch_id_sample_batches"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("batch_id", "feature", name=op.f("pk_sample_columns")),
    )
    op.create_table(
        "outcomes",
        _id(),
        *_product("outcomes"),
        sa.Column("prediction_id", sa.String(length=128), nullable=False),
        sa.Column("prediction", JSONType, nullable=True),
        sa.Column("label", JSONType, nullable=True),
        sa.Column("score", sa.Double(), nullable=True),
        sa.Column("error", sa.Double(), nullable=True),
        sa.Column("model_version", sa.String(length=128), nullable=True),
        sa.Column("event_time", UTCDateTime(timezone=True), nullable=False),
        sa.Column("predicted_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("labelled_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("joined_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("received_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("detector_processed", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outcomes")),
        sa.UniqueConstraint(
            "product_id", "prediction_id", name=op.f("uq_outcomes_product_id_prediction_id")
        ),
    )
    op.create_index("ix_outcomes_product_id_event_time", "outcomes", ["product_id", "event_time"])
    op.create_index(
        "ix_outcomes_product_id_detector_processed_id",
        "outcomes",
        ["product_id", "detector_processed", "id"],
    )
    op.create_table(
        "alerts",
        _id(),
        *_product("alerts"),
        sa.Column("fingerprint", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("starts_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("ends_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("labels", JSONType, nullable=False),
        sa.Column("annotations", JSONType, nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("group_key", sa.Text(), nullable=True),
        sa.Column("generator_url", sa.Text(), nullable=True),
        sa.Column("received_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
        sa.UniqueConstraint(
            "product_id",
            "fingerprint",
            "status",
            "starts_at",
            name=op.f("uq_alerts_product_id_fingerprint_status_starts_at"),
        ),
    )
    op.create_index(op.f("ix_alerts_received_at"), "alerts", ["received_at"])
    op.create_table(
        "signal_idempotency_keys",
        _id(),
        *_product("signal_idempotency_keys"),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("response", JSONType, nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signal_idempotency_keys")),
        sa.UniqueConstraint(
            "product_id",
            "kind",
            "key",
            name=op.f("uq_signal_idempotency_keys_product_id_kind_key"),
        ),
    )
    op.create_index(
        op.f("ix_signal_idempotency_keys_created_at"), "signal_idempotency_keys", ["created_at"]
    )


def downgrade() -> None:
    op.drop_table("signal_idempotency_keys")
    op.drop_table("alerts")
    op.drop_table("outcomes")
    op.drop_table("sample_columns")
    op.drop_table("sample_batches")
    op.drop_table("metric_points")
