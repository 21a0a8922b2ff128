"""Queries over ``teams``."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import exists, select

from retrigger.auth.models import ApiKey
from retrigger.db.repository import RepositoryBase
from retrigger.products.models import Product
from retrigger.teams.models import Team


class TeamRepository(RepositoryBase[Team]):
    model = Team

    async def get_by_name(self, name: str) -> Team | None:
        stmt = select(Team).where(Team.name == name)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list_(
        self, *, only_id: int | None, after_id: int | None, limit: int
    ) -> tuple[Sequence[Team], int | None]:
        stmt = self.select()
        if only_id is not None:
            stmt = stmt.where(Team.id == only_id)
        return await self.page(stmt, after_id=after_id, limit=limit)

    async def in_use(self, team_id: int) -> bool:
        """Products, live keys, or connections restricted to it (deleting the team would make
        such a connection org-wide) still refer to the team."""
        from retrigger.dispatch.models import ConnectionTeam

        products = select(exists().where(Product.team_id == team_id))
        keys = select(exists().where(ApiKey.team_id == team_id, ApiKey.revoked_at.is_(None)))
        connections = select(exists().where(ConnectionTeam.team_id == team_id))
        for query in (products, keys, connections):
            if (await self.session.execute(query)).scalar():
                return True
        return False
