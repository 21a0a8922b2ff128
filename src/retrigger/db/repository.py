"""Shared repository helpers: keyset pagination over integer ids."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.db.base import Base

ModelT = TypeVar("ModelT", bound=Base)


class RepositoryBase(Generic[ModelT]):
    """Common operations; subclasses add the queries of their domain."""

    model: type[ModelT]

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, obj: ModelT) -> ModelT:
        self.session.add(obj)
        await self.session.flush()
        return obj

    async def delete(self, obj: ModelT) -> None:
        await self.session.delete(obj)
        await self.session.flush()

    async def get_by_id(self, id_: int) -> ModelT | None:
        return await self.session.get(self.model, id_)

    async def page(
        self, stmt: Select[Any], *, after_id: int | None, limit: int
    ) -> tuple[Sequence[ModelT], int | None]:
        """Newest first, ``limit`` rows after the cursor; returns rows and the next cursor id."""
        id_col = self.model.id  # type: ignore[attr-defined]
        if after_id is not None:
            stmt = stmt.where(id_col < after_id)
        stmt = stmt.order_by(id_col.desc()).limit(limit + 1)
        rows = list((await self.session.execute(stmt)).scalars().all())
        next_id = rows[limit - 1].id if len(rows) > limit else None  # type: ignore[attr-defined]
        return rows[:limit], next_id

    def select(self) -> Select[tuple[ModelT]]:
        return select(self.model)
