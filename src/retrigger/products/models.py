"""The ``products`` table; the feature schema is a validated JSON document on the row."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from retrigger.db.base import Base, IdMixin, TimestampMixin
from retrigger.db.types import BigIntId, JSONType

if TYPE_CHECKING:
    from retrigger.teams.models import Team


class Product(IdMixin, TimestampMixin, Base):
    __tablename__ = "products"

    name: Mapped[str] = mapped_column(String(63), unique=True, nullable=False)
    team_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("teams.id", ondelete="RESTRICT"), index=True, nullable=False
    )
    description: Mapped[str] = mapped_column(Text, default="", nullable=False)
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list, nullable=False)
    features: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list, nullable=False)

    team: Mapped[Team] = relationship(lazy="raise")

    @property
    def team_name(self) -> str:
        return self.team.name
