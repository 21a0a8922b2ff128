"""Policies: templates with immutable versions, product policy versions.

Revision ID: 0002_policies
Revises: 0001_initial
Create Date: 2026-11-28 21:45:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from retrigger.db.types import UTCDateTime

revision: str = "0002_policies"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigIntId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "policy_templates",
        sa.Column("id", BigIntId, autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_templates")),
        sa.UniqueConstraint("name", name=op.f("uq_policy_templates_name")),
    )
    op.create_table(
        "policy_template_versions",
        sa.Column("id", BigIntId, autoincrement=True, nullable=False),
        sa.Column("template_id", BigIntId, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("spec", JSONType, nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("change_reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["policy_templates.id"],
            name=op.f("fk_policy_template_versions_template_id_policy_templates"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_template_versions")),
        sa.UniqueConstraint(
            "template_id", "version", name=op.f("uq_policy_template_versions_template_id_version")
        ),
    )
    op.create_table(
        "policy_versions",
        sa.Column("id", BigIntId, autoincrement=True, nullable=False),
        sa.Column("product_id", BigIntId, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("template_name", sa.String(length=63), nullable=True),
        sa.Column("template_version", sa.Integer(), nullable=True),
        sa.Column("spec", JSONType, nullable=False),
        sa.Column("effective", JSONType, nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("change_reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["products.id"],
            name=op.f("fk_policy_versions_product_id_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_versions")),
        sa.UniqueConstraint(
            "product_id", "version", name=op.f("uq_policy_versions_product_id_version")
        ),
    )
    op.create_index(op.f("ix_policy_versions_template_name"), "policy_versions", ["template_name"])


def downgrade() -> None:
    op.drop_table("policy_versions")
    op.drop_table("policy_template_versions")
    op.drop_table("policy_templates")
