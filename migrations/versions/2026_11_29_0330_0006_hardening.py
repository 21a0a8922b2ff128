"""Connections scoped to teams, poll/cancel bookkeeping on runs, durable evaluation requests.

- ``connection_teams``: the teams whose products may launch on a connection (none: every team).
- ``runs.poll_failures``: consecutive status polls the orchestrator refused (a vanished run fails
  after a limit); ``runs.cancel_attempts`` / ``runs.cancel_next_at``: a remote cancel retried
  with backoff, then given up.
- ``product_states.dirty_since``: the first signal committed since the product's last evaluation,
  written in the ingest transaction, so a pending evaluation survives restarts.

Revision ID: 0006_hardening
Revises: 0005_runs_connections
Create Date: 2026-11-29 03:30:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from retrigger.db.types import UTCDateTime

revision: str = "0006_hardening"
down_revision: str | None = "0005_runs_connections"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigIntId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "connection_teams",
        sa.Column("connection_id", BigIntId, nullable=False),
        sa.Column("team_id", BigIntId, nullable=False),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name=op.f("fk_connection_teams_connection_id_connections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_connection_teams_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("connection_id", "team_id", name=op.f("pk_connection_teams")),
    )
    op.create_index(
        op.f("ix_connection_teams_team_id"), "connection_teams", ["team_id"], unique=False
    )
    with op.batch_alter_table("runs") as batch:
        batch.add_column(
            sa.Column("poll_failures", sa.Integer(), server_default="0", nullable=False)
        )
        batch.add_column(
            sa.Column("cancel_attempts", sa.Integer(), server_default="0", nullable=False)
        )
        batch.add_column(sa.Column("cancel_next_at", UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("product_states") as batch:
        batch.add_column(sa.Column("dirty_since", UTCDateTime(timezone=True), nullable=True))
    op.create_index(
        op.f("ix_product_states_dirty_since"), "product_states", ["dirty_since"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_product_states_dirty_since"), table_name="product_states")
    with op.batch_alter_table("product_states") as batch:
        batch.drop_column("dirty_since")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("cancel_next_at")
        batch.drop_column("cancel_attempts")
        batch.drop_column("poll_failures")
    op.drop_index(op.f("ix_connection_teams_team_id"), table_name="connection_teams")
    op.drop_table("connection_teams")
