"""The ``connections``, ``runs``, ``run_attempts`` and ``run_transitions`` tables.

A run is the outbox row of a fired decision: written in the decision's transaction, then claimed
by a dispatcher. The database keeps the invariants: one run per decision, one idempotency key per
run, and at most one active run per product (a partial unique index).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from retrigger.db.base import Base, IdMixin, TimestampMixin
from retrigger.db.types import BigIntId, JSONType, UTCDateTime, utcnow

ACTIVE_STATES_SQL = "state IN ('pending', 'awaiting_approval', 'submitted', 'running')"


class Connection(IdMixin, TimestampMixin, Base):
    """A named orchestrator endpoint; ``secret_ref`` says where the secret lives."""

    __tablename__ = "connections"

    name: Mapped[str] = mapped_column(String(63), unique=True, nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    base_url: Mapped[str] = mapped_column(String(2000), nullable=False)
    auth_type: Mapped[str] = mapped_column(String(32), nullable=False)
    username: Mapped[str | None] = mapped_column(String(200), nullable=True)
    secret_ref: Mapped[str | None] = mapped_column(String(500), nullable=True)
    verify_tls: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    timeout_seconds: Mapped[float] = mapped_column(Float, nullable=False)
    options: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, nullable=False)
    description: Mapped[str] = mapped_column(Text, default="", nullable=False)


class ConnectionTeam(Base):
    """A team whose products may launch on a connection; a connection without rows is org-wide."""

    __tablename__ = "connection_teams"

    connection_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True
    )
    team_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Run(IdMixin, Base):
    """One retraining launch and its lifecycle."""

    __tablename__ = "runs"
    __table_args__ = (
        Index(
            "uq_runs_one_active_per_product",
            "product_id",
            unique=True,
            sqlite_where=text(ACTIVE_STATES_SQL),
            postgresql_where=text(ACTIVE_STATES_SQL),
        ),
        Index("ix_runs_state_next_attempt_at", "state", "next_attempt_at"),
        Index("ix_runs_product_id_created_at", "product_id", "created_at"),
    )

    product_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("products.id", ondelete="CASCADE"), nullable=False
    )
    decision_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("decisions.id", ondelete="CASCADE"), unique=True, nullable=False
    )
    state: Mapped[str] = mapped_column(String(32), nullable=False)
    connection_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("connections.id", ondelete="RESTRICT"), index=True, nullable=False
    )
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    pipeline: Mapped[str] = mapped_column(String(500), nullable=False)
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True, nullable=False)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    context: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    external_id: Mapped[str | None] = mapped_column(String(500), nullable=True)
    external_url: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    external_data: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    lease_owner: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    next_poll_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    cancel_pending: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    cancel_attempts: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0", nullable=False
    )
    cancel_next_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    poll_failures: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0", nullable=False
    )
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    status_detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    model_version: Mapped[str | None] = mapped_column(String(200), nullable=True)
    outputs: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, nullable=False)
    created_by: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow, nullable=False
    )
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class RunAttempt(IdMixin, Base):
    """One submission attempt: when, how it ended, and the error if any."""

    __tablename__ = "run_attempts"
    __table_args__ = (Index("uq_run_attempts_run_id_number", "run_id", "number", unique=True),)

    run_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False
    )
    number: Mapped[int] = mapped_column(Integer, nullable=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    result: Mapped[str] = mapped_column(String(16), nullable=False)
    error_class: Mapped[str | None] = mapped_column(String(32), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    worker: Mapped[str] = mapped_column(String(100), nullable=False)


class RunTransition(IdMixin, Base):
    """One state change of a run, with its cause and who made it (append-only)."""

    __tablename__ = "run_transitions"
    __table_args__ = (Index("ix_run_transitions_run_id_id", "run_id", "id"),)

    run_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False
    )
    from_state: Mapped[str | None] = mapped_column(String(32), nullable=True)
    to_state: Mapped[str] = mapped_column(String(32), nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    cause: Mapped[str] = mapped_column(Text, nullable=False)
    actor: Mapped[str] = mapped_column(String(64), nullable=False)
