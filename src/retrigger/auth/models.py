"""The ``api_keys`` table: key id, secret hash, team, scopes, revocation."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from retrigger.db.base import Base, IdMixin
from retrigger.db.types import BigIntId, JSONType, UTCDateTime, utcnow

if TYPE_CHECKING:
    from retrigger.teams.models import Team


class ApiKey(IdMixin, Base):
    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(16), unique=True, nullable=False)
    secret_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    team_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("teams.id", ondelete="RESTRICT"), index=True, nullable=True
    )
    scopes: Mapped[list[str]] = mapped_column(JSONType, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    created_by: Mapped[str | None] = mapped_column(String(16), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    team: Mapped[Team | None] = relationship(lazy="raise")

    @property
    def team_name(self) -> str | None:
        return self.team.name if self.team is not None else None
