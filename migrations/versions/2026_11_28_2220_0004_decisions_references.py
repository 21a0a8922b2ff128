"""Decisions, product evaluation state, references with their feature profiles.

Revision ID: 0004_decisions_references
Revises: 0003_signals
Create Date: 2026-11-28 22:20:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from retrigger.db.types import UTCDateTime

revision: str = "0004_decisions_references"
down_revision: str | None = "0003_signals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigIntId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "decisions",
        sa.Column("product_id", BigIntId, nullable=False),
        sa.Column("evaluated_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("trigger", sa.String(length=32), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("suppressed_by", sa.String(length=32), nullable=True),
        sa.Column("requires_approval", sa.Boolean(), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=True),
        sa.Column("policy_fingerprint", sa.String(length=64), nullable=False),
        sa.Column("reference_version", sa.Integer(), nullable=True),
        sa.Column(
            "fired_rules",
            JSONType,
            nullable=False,
        ),
        sa.Column("fired_types", sa.String(length=200), nullable=False),
        sa.Column(
            "findings",
            JSONType,
            nullable=False,
        ),
        sa.Column(
            "guards",
            JSONType,
            nullable=False,
        ),
        sa.Column(
            "inputs",
            JSONType,
            nullable=False,
        ),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "id",
            BigIntId,
            autoincrement=True,
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_decisions_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
    )
    op.create_table(
        "product_references",
        sa.Column("product_id", BigIntId, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("model_version", sa.String(length=128), nullable=True),
        sa.Column("trained_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "baseline_metrics",
            JSONType,
            nullable=False,
        ),
        sa.Column("n_rows", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("activated_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "id",
            BigIntId,
            autoincrement=True,
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_product_references_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_product_references")),
    )
    op.create_table(
        "product_states",
        sa.Column("product_id", BigIntId, nullable=False),
        sa.Column("last_evaluated_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("model_trained_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("last_retrain_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "detectors",
            JSONType,
            nullable=False,
        ),
        sa.Column(
            "schedules",
            JSONType,
            nullable=False,
        ),
        sa.Column(
            "history",
            JSONType,
            nullable=False,
        ),
        sa.Column(
            "fired_at",
            JSONType,
            nullable=False,
        ),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_product_states_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("product_id", name=op.f("pk_product_states")),
    )
    op.create_table(
        "reference_features",
        sa.Column("reference_id", BigIntId, nullable=False),
        sa.Column("feature", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("profile", sa.LargeBinary(), nullable=False),
        sa.Column(
            "summary",
            JSONType,
            nullable=False,
        ),
        sa.Column(
            "id",
            BigIntId,
            autoincrement=True,
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["reference_id"],
            ["product_references.id"],
            name=op.f("fk_reference_features_reference_id_product_references"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reference_features")),
    )
    op.create_index("ix_decisions_outcome_evaluated_at", "decisions", ["outcome", "evaluated_at"])
    op.create_index(
        "ix_decisions_product_id_evaluated_at", "decisions", ["product_id", "evaluated_at"]
    )
    op.create_index(
        "uq_product_references_one_active",
        "product_references",
        ["product_id"],
        unique=True,
        sqlite_where=sa.text("active"),
        postgresql_where=sa.text("active"),
    )
    op.create_index(
        "uq_product_references_product_id_version",
        "product_references",
        ["product_id", "version"],
        unique=True,
    )
    op.create_index(
        "uq_reference_features_reference_id_feature",
        "reference_features",
        ["reference_id", "feature"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_table("reference_features")
    op.drop_table("product_states")
    op.drop_table("product_references")
    op.drop_table("decisions")
