"""The ``product_references`` and ``reference_features`` tables; one active reference each."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, LargeBinary, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from retrigger.db.base import Base, IdMixin
from retrigger.db.types import BigIntId, JSONType, UTCDateTime, utcnow


class Reference(IdMixin, Base):
    __tablename__ = "product_references"
    __table_args__ = (
        Index("uq_product_references_product_id_version", "product_id", "version", unique=True),
        # the database, not only the code, keeps one active reference per product
        Index(
            "uq_product_references_one_active",
            "product_id",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )

    product_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("products.id", ondelete="CASCADE"), nullable=False
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    source: Mapped[str] = mapped_column(String(16), nullable=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    model_version: Mapped[str | None] = mapped_column(String(128), nullable=True)
    trained_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    baseline_metrics: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    n_rows: Mapped[int] = mapped_column(Integer, nullable=False)
    created_by: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ReferenceFeature(IdMixin, Base):
    """One feature's profile: compact bytes from ``retrigger.stats.profiles``, plus a summary."""

    __tablename__ = "reference_features"
    __table_args__ = (
        Index("uq_reference_features_reference_id_feature", "reference_id", "feature", unique=True),
    )

    reference_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("product_references.id", ondelete="CASCADE"), nullable=False
    )
    feature: Mapped[str] = mapped_column(String(128), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    profile: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    summary: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
