"""Queries over ``api_keys``."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from retrigger.auth.models import ApiKey
from retrigger.db.repository import RepositoryBase


class ApiKeyRepository(RepositoryBase[ApiKey]):
    model = ApiKey

    async def get_by_key_id(self, key_id: str) -> ApiKey | None:
        stmt = select(ApiKey).where(ApiKey.key_id == key_id).options(selectinload(ApiKey.team))
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_for_auth(self, key_id: str) -> ApiKey | None:
        """The key row alone (no team): the hot path of every authenticated request."""
        stmt = select(ApiKey).where(ApiKey.key_id == key_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def count(self) -> int:
        return int((await self.session.execute(select(func.count(ApiKey.id)))).scalar_one())

    async def list_(
        self, *, team_id: int | None, include_revoked: bool, after_id: int | None, limit: int
    ) -> tuple[Sequence[ApiKey], int | None]:
        stmt = self.select().options(selectinload(ApiKey.team))
        if team_id is not None:
            stmt = stmt.where(ApiKey.team_id == team_id)
        if not include_revoked:
            stmt = stmt.where(ApiKey.revoked_at.is_(None))
        return await self.page(stmt, after_id=after_id, limit=limit)
