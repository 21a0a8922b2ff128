"""Policy storage: templates and their immutable versions, product policy versions.

Specs are stored as the author wrote them (provenance needs to tell written values from
defaults); the fingerprint of the canonical form decides whether a save changes anything.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from retrigger.db.base import Base, IdMixin, TimestampMixin
from retrigger.db.types import BigIntId, JSONType, UTCDateTime, utcnow

if TYPE_CHECKING:
    from retrigger.products.models import Product


class PolicyTemplate(IdMixin, TimestampMixin, Base):
    __tablename__ = "policy_templates"

    name: Mapped[str] = mapped_column(String(63), unique=True, nullable=False)
    latest_version: Mapped[int] = mapped_column(Integer, nullable=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)


class PolicyTemplateVersion(IdMixin, Base):
    __tablename__ = "policy_template_versions"
    __table_args__ = (UniqueConstraint("template_id", "version"),)

    template_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("policy_templates.id", ondelete="CASCADE"), nullable=False
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    change_reason: Mapped[str] = mapped_column(Text, nullable=False)
    created_by: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)

    template: Mapped[PolicyTemplate] = relationship(lazy="raise")


class PolicyVersion(IdMixin, Base):
    """One saved version of a product's policy, with the effective policy it resolved to."""

    __tablename__ = "policy_versions"
    __table_args__ = (UniqueConstraint("product_id", "version"),)

    product_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("products.id", ondelete="CASCADE"), nullable=False
    )
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    template_name: Mapped[str | None] = mapped_column(String(63), nullable=True, index=True)
    template_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    effective: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False)
    fingerprint: Mapped[str] = mapped_column(String(64), nullable=False)
    change_reason: Mapped[str] = mapped_column(Text, nullable=False)
    created_by: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)

    product: Mapped[Product] = relationship(lazy="raise")
