"""Queries over ``products``."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from retrigger.db.repository import RepositoryBase
from retrigger.products.models import Product
from retrigger.teams.models import Team


class ProductRepository(RepositoryBase[Product]):
    model = Product

    async def get_by_name(self, name: str) -> Product | None:
        stmt = select(Product).where(Product.name == name).options(selectinload(Product.team))
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list_(
        self,
        *,
        team_id: int | None,
        team_name: str | None,
        after_id: int | None,
        limit: int,
    ) -> tuple[Sequence[Product], int | None]:
        stmt = self.select().options(selectinload(Product.team))
        if team_id is not None:
            stmt = stmt.where(Product.team_id == team_id)
        if team_name is not None:
            stmt = stmt.join(Team, Team.id == Product.team_id).where(Team.name == team_name)
        return await self.page(stmt, after_id=after_id, limit=limit)

    async def by_ids(self, ids: Sequence[int]) -> Sequence[Product]:
        if not ids:
            return []
        stmt = select(Product).where(Product.id.in_(list(ids)))
        return (await self.session.execute(stmt)).scalars().all()

    async def all_ids(self) -> list[int]:
        return list((await self.session.execute(select(Product.id))).scalars().all())
