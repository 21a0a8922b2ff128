"""The ``decisions`` table and ``product_states`` (one locked row per product).

Decisions are append-only, except the repeat counters a folded scheduled evaluation bumps.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from retrigger.db.base import Base, IdMixin
from retrigger.db.types import BigIntId, JSONType, UTCDateTime, utcnow


class Decision(IdMixin, Base):
    """One evaluation of a product's policy, with everything needed to explain and reproduce it."""

    __tablename__ = "decisions"
    __table_args__ = (
        Index("ix_decisions_product_id_evaluated_at", "product_id", "evaluated_at"),
        Index("ix_decisions_outcome_evaluated_at", "outcome", "evaluated_at"),
    )

    product_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("products.id", ondelete="CASCADE"), nullable=False
    )
    evaluated_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False)
    trigger: Mapped[str] = mapped_column(String(32), nullable=False)
    outcome: Mapped[str] = mapped_column(String(32), nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    suppressed_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    requires_approval: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    policy_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    policy_fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    reference_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    fired_rules: Mapped[list[str]] = mapped_column(JSONType, nullable=False)
    # ",data_drift,alert," so "decisions fired by rule type X" is a portable LIKE filter
    fired_types: Mapped[str] = mapped_column(String(200), nullable=False)
    findings: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, nullable=False)
    guards: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, nullable=False)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    created_by: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    # scheduled evaluations that came to this decision again and consumed nothing new: folded
    # into it instead of stored (``decisions.service``), so a fresh model is not one row a minute
    repeat_count: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0", nullable=False
    )
    last_repeated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ProductState(Base):
    """Mutable evaluation state of a product, locked (FOR UPDATE) by each evaluation.

    ``detectors``: rule id -> {config, state} of concept-drift detectors; ``schedules``: rule id ->
    last evaluation time; ``history``: rule id -> recent breach flags (M-of-N), and
    ``history_windows``: rule id -> the data its newest flag was decided on; ``fired_at``: recent
    fire times (cooldown and budget); ``model_trained_at``: when the serving model was trained.
    """

    __tablename__ = "product_states"

    product_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("products.id", ondelete="CASCADE"), primary_key=True
    )
    last_evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    model_trained_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_retrain_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    detectors: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, nullable=False)
    schedules: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, nullable=False)
    history: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, nullable=False)
    history_windows: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    fired_at: Mapped[list[str]] = mapped_column(JSONType, default=list, nullable=False)
    dirty_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    """The first signal committed since the last evaluation (None: nothing waits)."""
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow, nullable=False
    )
