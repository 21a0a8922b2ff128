"""Orchestrator connections, runs (the outbox of fired decisions), their attempts and transitions.

Revision ID: 0005_runs_connections
Revises: 0004_decisions_references
Create Date: 2026-11-29 00:15:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from retrigger.db.types import UTCDateTime

revision: str = "0005_runs_connections"
down_revision: str | None = "0004_decisions_references"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigIntId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
ACTIVE = "state IN ('pending', 'awaiting_approval', 'submitted', 'running')"


def _id() -> sa.Column[int]:
    return sa.Column("id", BigIntId, autoincrement=True, nullable=False)


def upgrade() -> None:
    op.create_table(
        "connections",
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("base_url", sa.String(length=2000), nullable=False),
        sa.Column("auth_type", sa.String(length=32), nullable=False),
        sa.Column("username", sa.String(length=200), nullable=True),
        sa.Column("secret_ref", sa.String(length=500), nullable=True),
        sa.Column("verify_tls", sa.Boolean(), nullable=False),
        sa.Column("timeout_seconds", sa.Float(), nullable=False),
        sa.Column("options", JSONType, nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        _id(),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connections")),
        sa.UniqueConstraint("name", name=op.f("uq_connections_name")),
    )
    op.create_table(
        "runs",
        sa.Column("product_id", BigIntId, nullable=False),
        sa.Column("decision_id", BigIntId, nullable=False),
        sa.Column("state", sa.String(length=32), nullable=False),
        sa.Column("connection_id", BigIntId, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("pipeline", sa.String(length=500), nullable=False),
        sa.Column("idempotency_key", sa.String(length=100), nullable=False),
        sa.Column("parameters", JSONType, nullable=False),
        sa.Column("context", JSONType, nullable=False),
        sa.Column("external_id", sa.String(length=500), nullable=True),
        sa.Column("external_url", sa.String(length=2000), nullable=True),
        sa.Column("external_data", JSONType, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("lease_expires_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("next_poll_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancel_pending", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("status_detail", sa.Text(), nullable=True),
        sa.Column("model_version", sa.String(length=200), nullable=True),
        sa.Column("outputs", JSONType, nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("submitted_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", UTCDateTime(timezone=True), nullable=True),
        _id(),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_runs_connection_id_connections"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["decisions.id"],
            name=op.f("fk_runs_decision_id_decisions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_runs_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.UniqueConstraint("decision_id", name=op.f("uq_runs_decision_id")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_runs_idempotency_key")),
    )
    op.create_index("ix_runs_connection_id", "runs", ["connection_id"])
    op.create_index("ix_runs_product_id_created_at", "runs", ["product_id", "created_at"])
    op.create_index("ix_runs_state_next_attempt_at", "runs", ["state", "next_attempt_at"])
    # the database, not only the code, keeps one active run per product
    op.create_index(
        "uq_runs_one_active_per_product",
        "runs",
        ["product_id"],
        unique=True,
        sqlite_where=sa.text(ACTIVE),
        postgresql_where=sa.text(ACTIVE),
    )
    op.create_table(
        "run_attempts",
        sa.Column("run_id", BigIntId, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("started_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("result", sa.String(length=16), nullable=False),
        sa.Column("error_class", sa.String(length=32), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("worker", sa.String(length=100), nullable=False),
        _id(),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_attempts_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_attempts")),
    )
    op.create_index(
        "uq_run_attempts_run_id_number", "run_attempts", ["run_id", "number"], unique=True
    )
    op.create_table(
        "run_transitions",
        sa.Column("run_id", BigIntId, nullable=False),
        sa.Column("from_state", sa.String(length=32), nullable=True),
        sa.Column("to_state", sa.String(length=32), nullable=False),
        sa.Column("at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        _id(),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_run_transitions_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_transitions")),
    )
    op.create_index("ix_run_transitions_run_id_id", "run_transitions", ["run_id", "id"])


def downgrade() -> None:
    op.drop_table("run_transitions")
    op.drop_table("run_attempts")
    op.drop_table("runs")
    op.drop_table("connections")
