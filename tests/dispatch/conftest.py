"""Fixtures of the runs / dispatch tests: an API helper, and a live setup on committed data.

``api`` drives the in-process app inside the test's rolled-back transaction. ``live`` gives a
fresh SQLite or PostgreSQL database with committed rows, the app on top of it, a fake Airflow
behind ``httpx.MockTransport`` and an injectable clock, for dispatchers that open their own
sessions.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select

from retrigger.auth import service as auth_service
from retrigger.auth.schemas import ApiKeyCreate
from retrigger.auth.scopes import SYSTEM, Scope
from retrigger.config import Settings
from retrigger.db import migrate
from retrigger.db.session import Database
from retrigger.dispatch.dispatcher import Dispatcher
from retrigger.dispatch.models import Run, RunAttempt
from retrigger.dispatch.orchestrators.base import ConnectionConfig
from retrigger.dispatch.poller import StatusPoller
from retrigger.main import create_app
from tests.fixtures.db import FreshDatabase
from tests.fixtures.orchestrators import FakeAirflow

CALLBACK_SECRET = "whsec_" + base64.b64encode(b"callback-secret-of-the-tests-0123").decode()
STALE = {"id": "stale", "type": "staleness", "max_age": "1d"}
"""A rule that fires at every evaluation once the reference is older than a day."""
TARGET: dict[str, Any] = {
    "connection": "airflow-local",
    "pipeline": "train",
    "parameters": {"product": "{product}", "run": "{run_id}", "why": "{reasons}"},
}


class RunsApi:
    """The HTTP calls the runs tests repeat: products with policies, connections, runs."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def connection(self, name: str = "airflow-local", **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": name,
            "kind": "airflow",
            "base_url": "http://airflow.test:8080",
            "auth": {"type": "none"},
            "options": {"api_version": "v2"},
        }
        body.update(overrides)
        r = await self.http.post("/v1/connections", json=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def product(
        self,
        name: str = "p",
        *,
        team: str = "ml",
        target: dict[str, Any] | None = TARGET,
        stale: bool = True,
        **guards: Any,
    ) -> str:
        """A product whose policy fires on staleness (its reference is 5 days old if ``stale``)."""
        r = await self.http.post("/v1/teams", json={"name": team})
        assert r.status_code in (201, 409), r.text
        features = [{"name": "amount", "kind": "numeric"}]
        r = await self.http.post(
            "/v1/products", json={"name": name, "team": team, "features": features}
        )
        assert r.status_code == 201, r.text
        spec: dict[str, Any] = {"rules": [STALE], "guards": {"cooldown": None, **guards}}
        if target is not None:
            spec["target"] = target
        r = await self.http.put(
            f"/v1/products/{name}/policy", json={"spec": spec, "change_reason": "runs tests"}
        )
        assert r.status_code == 200, r.text
        if stale:
            trained = datetime.now(UTC) - timedelta(days=5)
            body = {
                "columns": {"amount": [float(i % 17) for i in range(200)]},
                "trained_at": trained.isoformat(),
                "model_version": "m1",
            }
            r = await self.http.post(f"/v1/products/{name}/references", json=body)
            assert r.status_code == 201, r.text
        return name

    async def evaluate(self, product: str = "p") -> dict[str, Any]:
        r = await self.http.post(f"/v1/products/{product}:evaluate", json={})
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def retrain(self, product: str = "p", **body: Any) -> httpx.Response:
        return await self.http.post(
            f"/v1/products/{product}:retrain", json={"reason": "new data landed", **body}
        )

    async def fired_run(self, product: str = "p") -> int:
        """Evaluate ``product`` (which must fire) and return the id of the run it created."""
        decision = await self.evaluate(product)
        assert decision["outcome"] == "fired", decision["reason"]
        assert decision["run_id"] is not None
        return int(decision["run_id"])

    async def get_run(self, run_id: int) -> dict[str, Any]:
        r = await self.http.get(f"/v1/runs/{run_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def runs(self, product: str = "p") -> list[dict[str, Any]]:
        r = await self.http.get("/v1/runs", params={"product": product})
        assert r.status_code == 200, r.text
        return list(r.json()["items"])

    async def act(self, run_id: int, action: str, reason: str = "checked") -> httpx.Response:
        return await self.http.post(f"/v1/runs/{run_id}:{action}", json={"reason": reason})


@pytest.fixture
def app(app: FastAPI) -> FastAPI:
    """The shared test app, verifying signed run callbacks with :data:`CALLBACK_SECRET`."""
    settings: Settings = app.state.settings
    app.state.settings = settings.model_copy(update={"callback_secret": SecretStr(CALLBACK_SECRET)})
    return app


@pytest.fixture
def api(admin: httpx.AsyncClient) -> RunsApi:
    return RunsApi(admin)


class Clock:
    """Injected time: starts now, moves only when told."""

    def __init__(self) -> None:
        self.at = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@dataclass
class Live:
    """Committed data on a fresh database, the app over it, and the outside world faked."""

    kind: str
    settings: Settings
    db: Database
    api: RunsApi
    fake: FakeAirflow
    clock: Clock

    def transport(self, config: ConnectionConfig) -> httpx.AsyncBaseTransport:
        return httpx.MockTransport(self.fake.handler)

    def dispatcher(self, owner: str = "dispatcher-a") -> Dispatcher:
        return Dispatcher(
            self.db,
            self.settings,
            owner=owner,
            now=self.clock,
            transport_factory=self.transport,
            rng=lambda: 0.5,
        )

    def poller(self) -> StatusPoller:
        return StatusPoller(
            self.db, self.settings, now=self.clock, transport_factory=self.transport
        )

    async def run(self, run_id: int) -> Run:
        """The run as committed now."""
        async with self.db.session_scope() as session:
            run = await session.get(Run, run_id)
            assert run is not None
            return run

    async def attempts(self, run_id: int) -> Sequence[RunAttempt]:
        async with self.db.session_scope() as session:
            query = select(RunAttempt).where(RunAttempt.run_id == run_id)
            return (await session.execute(query.order_by(RunAttempt.number))).scalars().all()


def live_settings(url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": url,
        "background_evaluation": False,
        "embedded_worker": False,
        "auth": "enabled",
        "dispatch_backoff_base_seconds": 1.0,
        "dispatch_backoff_max_seconds": 60.0,
        "dispatch_max_attempts": 4,
        "dispatch_lease_seconds": 60.0,
        "dispatch_batch_size": 10,
        "status_poll_interval_seconds": 15.0,
        "callback_secret": SecretStr(CALLBACK_SECRET),
    }
    values.update(overrides)
    return Settings(**values)


async def admin_token(db: Database) -> str:
    async with db.session_scope() as session:
        _, token = await auth_service.create(
            session, principal=SYSTEM, key_in=ApiKeyCreate(name="admin", scopes=[Scope.admin])
        )
    return token


@pytest_asyncio.fixture(loop_scope="session", params=["sqlite", "postgresql"])
async def live(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Live]:
    kind = str(request.param)
    async with FreshDatabase(kind, tmp_path) as url:
        settings = live_settings(url)
        db = Database.from_settings(settings)
        try:
            await migrate.upgrade(db.engine)
            token = await admin_token(db)
            app = create_app(settings, database=db)
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                http.headers["Authorization"] = f"Bearer {token}"
                yield Live(kind, settings, db, RunsApi(http), FakeAirflow(), Clock())
        finally:
            await db.dispose()
