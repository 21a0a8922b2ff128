"""Signals fixtures: a product with a feature schema, ingest keys, and a bigger-body app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.auth.scopes import Scope
from retrigger.teams.models import Team
from tests.fixtures.factories import create_key, create_product, create_team

FEATURES: list[dict[str, Any]] = [
    {"name": "amount", "kind": "numeric", "min": 0, "max": 1000},
    {"name": "country", "kind": "categorical", "categories": ["DE", "FR"]},
    {"name": "is_new_device", "kind": "boolean"},
    {"name": "tenure", "kind": "numeric"},
]


@dataclass
class World:
    team_id: int
    team_name: str
    product_id: int
    product_name: str
    ingest: dict[str, str]
    """Authorization header of an ingest key of the product's team."""

    def path(self, kind: str) -> str:
        return f"/v1/products/{self.product_name}/signals/{kind}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest_asyncio.fixture(loop_scope="session")
async def world(session: AsyncSession) -> World:
    team = await create_team(session)
    product = await create_product(session, team=team, features=FEATURES)
    token = await create_key(session, scopes=[Scope.ingest], team=team, name="gateway")
    # plain values: a request that fails rolls back and expires ORM objects of the session
    return World(
        team_id=team.id,
        team_name=team.name,
        product_id=product.id,
        product_name=product.name,
        ingest=bearer(token),
    )


@pytest_asyncio.fixture(loop_scope="session")
async def big_client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app whose body limit admits batches of 100,000 points."""
    app.state.settings = app.state.settings.model_copy(update={"max_body_bytes": 64 << 20})
    from retrigger.api.middleware import BodyLimitMiddleware

    for middleware in app.user_middleware:
        if middleware.cls is BodyLimitMiddleware:
            middleware.kwargs["max_body_bytes"] = 64 << 20
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


async def count(session: AsyncSession, model: Any, **filters: Any) -> int:
    stmt = select(func.count()).select_from(model)
    for name, value in filters.items():
        stmt = stmt.where(getattr(model, name) == value)
    return int((await session.execute(stmt)).scalar_one())


async def team_of(session: AsyncSession, world: World) -> Team:
    team = await session.get(Team, world.team_id)
    assert team is not None
    return team
