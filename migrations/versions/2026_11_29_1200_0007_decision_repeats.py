"""Repeat folding of scheduled evaluations, and M-of-N histories keyed by their data.

- ``decisions.repeat_count``: how many later scheduled evaluations came to this decision again
  and read nothing new, so they stored no decision of their own (0: none).
- ``decisions.last_repeated_at``: when the last of them ran (null: never repeated).
- ``product_states.history_windows``: rule id -> the data the newest M-of-N history entry of
  a performance rule was decided on, so the same window never counts twice (null: none yet).

Revision ID: 0007_decision_repeats
Revises: 0006_hardening
Create Date: 2026-11-29 12:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from retrigger.db.types import UTCDateTime

revision: str = "0007_decision_repeats"
down_revision: str | None = "0006_hardening"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSONType = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(
            sa.Column("repeat_count", sa.Integer(), server_default="0", nullable=False)
        )
        batch.add_column(sa.Column("last_repeated_at", UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table("product_states") as batch:
        batch.add_column(sa.Column("history_windows", JSONType, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("product_states") as batch:
        batch.drop_column("history_windows")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("last_repeated_at")
        batch.drop_column("repeat_count")
