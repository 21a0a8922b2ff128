"""Queries over decisions and product evaluation state."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from retrigger.db.repository import RepositoryBase
from retrigger.db.types import utcnow
from retrigger.decisions.models import Decision, ProductState
from retrigger.products.models import Product


class DecisionRepository(RepositoryBase[Decision]):
    model = Decision

    async def search(
        self,
        *,
        team_id: int | None,
        product_id: int | None,
        outcome: str | None,
        rule_type: str | None,
        since: datetime | None,
        until: datetime | None,
        after_id: int | None,
        limit: int,
    ) -> tuple[Sequence[Decision], int | None]:
        stmt = self.select()
        if team_id is not None:
            owner = aliased(Product)
            stmt = stmt.join(owner, owner.id == Decision.product_id).where(owner.team_id == team_id)
        if product_id is not None:
            stmt = stmt.where(Decision.product_id == product_id)
        if outcome:
            stmt = stmt.where(Decision.outcome == outcome)
        if rule_type:
            stmt = stmt.where(Decision.fired_types.like(f"%,{rule_type},%"))
        if since:
            stmt = stmt.where(Decision.evaluated_at >= since)
        if until:
            stmt = stmt.where(Decision.evaluated_at < until)
        return await self.page(stmt, after_id=after_id, limit=limit)

    async def between(self, product_id: int, start: datetime, end: datetime) -> Sequence[Decision]:
        stmt = (
            select(Decision)
            .where(
                Decision.product_id == product_id,
                Decision.evaluated_at >= start,
                Decision.evaluated_at < end,
            )
            .order_by(Decision.evaluated_at)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def latest(self, product_id: int) -> Decision | None:
        """The product's last stored decision (the newest evaluation time, then the newest id)."""
        stmt = (
            select(Decision)
            .where(Decision.product_id == product_id)
            .order_by(Decision.evaluated_at.desc(), Decision.id.desc())
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def note_repeat(self, decision: Decision, *, at: datetime) -> None:
        """Fold one more evaluation into ``decision``: it came to the same and read nothing new."""
        decision.repeat_count = (decision.repeat_count or 0) + 1
        decision.last_repeated_at = at
        await self.session.flush()


async def lock_state(session: AsyncSession, product_id: int) -> ProductState:
    """The product's evaluation state, created if missing, locked until the transaction ends."""
    stmt = select(ProductState).where(ProductState.product_id == product_id).with_for_update()
    state = (await session.execute(stmt)).scalar_one_or_none()
    if state is not None:
        return state
    # concurrent first evaluations both try to create the row: the loser's insert is a no-op
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    values = {
        "product_id": product_id,
        "detectors": {},
        "schedules": {},
        "history": {},
        "fired_at": [],
        "updated_at": utcnow(),
    }
    await session.execute(insert(ProductState).values(**values).on_conflict_do_nothing())
    return (await session.execute(stmt.execution_options(populate_existing=True))).scalar_one()


async def get_state(session: AsyncSession, product_id: int) -> ProductState | None:
    return await session.get(ProductState, product_id)
