"""Backtests and dry runs only read: while one is in the middle of its replay, ingestion and
stored evaluations go on (on SQLite, where a write transaction would block every writer).

The app runs on its own committed database, without the test-session override, so its requests
open real units of work; the replay is held at a step until the test has written around it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio

from retrigger.auth import service as auth_service
from retrigger.auth.schemas import ApiKeyCreate
from retrigger.auth.scopes import SYSTEM, Scope
from retrigger.config import Settings
from retrigger.db import migrate
from retrigger.db.session import Database
from retrigger.decisions import backtest as backtest_service
from retrigger.decisions import service as decision_service
from retrigger.main import create_app
from tests.fixtures.db import FreshDatabase

pytestmark = pytest.mark.asyncio(loop_scope="session")

ALERT_RULE = {"id": "am", "type": "alert", "matchers": [{"name": "alertname", "value": "Drift"}]}
SAMPLES = {"columns": {"x": [1.0, 2.0, 3.0]}}


@dataclass
class Served:
    http: httpx.AsyncClient
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest_asyncio.fixture(loop_scope="session", params=["sqlite", "postgresql"])
async def served(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Served]:
    async with FreshDatabase(request.param, tmp_path) as url:
        # a writer blocked by the replay would give up after 1 s (a 503), not hang the test
        settings = Settings(
            database_url=url,
            auth="enabled",
            background_evaluation=False,
            sqlite_busy_timeout_ms=1000,
        )
        db = Database.from_settings(settings)
        try:
            await migrate.upgrade(db.engine)
            async with db.session_scope() as session:
                # a key no request has used yet: the first one looks it up in the database
                _, token = await auth_service.create(
                    session,
                    principal=SYSTEM,
                    key_in=ApiKeyCreate(name="t", scopes=[Scope.admin]),
                )
            app = create_app(settings, database=db)
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
                served = Served(http, token)
                await setup(served)
                yield served
        finally:
            await db.dispose()


async def setup(s: Served) -> None:
    admin = {"Authorization": f"Bearer {s.token}"}
    assert (await s.http.post("/v1/teams", json={"name": "ml"}, headers=admin)).status_code == 201
    product = {"name": "p", "team": "ml", "features": [{"name": "x", "kind": "numeric"}]}
    assert (await s.http.post("/v1/products", json=product, headers=admin)).status_code == 201
    policy = {"spec": {"rules": [ALERT_RULE]}, "change_reason": "test"}
    r = await s.http.put("/v1/products/p/policy", json=policy, headers=admin)
    assert r.status_code == 200, r.text


class Pause:
    """Wraps ``run_step``: the given call waits until the test lets it go."""

    def __init__(self, real: Callable[..., Any], at_call: int) -> None:
        self.real = real
        self.at_call = at_call
        self.calls = 0
        self.reached = asyncio.Event()
        self.go = asyncio.Event()

    async def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == self.at_call:
            self.reached.set()
            await self.go.wait()
        return await self.real(*args, **kwargs)


async def writes_go_on(s: Served) -> None:
    """What must not wait for a replay: a sample batch and a stored evaluation."""
    r = await s.http.post("/v1/products/p/signals/samples", json=SAMPLES, headers=s.auth)
    assert r.status_code == 200, r.text
    r = await s.http.post("/v1/products/p:evaluate", json={}, headers=s.auth)
    assert r.status_code == 200, r.text
    assert r.json()["dry_run"] is False


class TestReadOnly:
    async def test_ingestion_goes_on_during_a_backtest(
        self, served: Served, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        pause = Pause(backtest_service.run_step, at_call=3)
        monkeypatch.setattr(backtest_service, "run_step", pause)
        end = datetime.now(UTC)
        body = {"start": (end - timedelta(days=9)).isoformat(), "end": end.isoformat()}
        replay = asyncio.create_task(
            served.http.post("/v1/products/p/backtest", json=body, headers=served.auth)
        )
        try:
            await asyncio.wait_for(pause.reached.wait(), timeout=60)
            await writes_go_on(served)
        finally:
            pause.go.set()
        r = await replay
        assert r.status_code == 200, r.text
        assert len(r.json()["steps"]) == 10
        assert pause.calls == 10

    async def test_ingestion_goes_on_during_a_dry_run(
        self, served: Served, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        pause = Pause(decision_service.run_step, at_call=1)
        monkeypatch.setattr(decision_service, "run_step", pause)
        dry = asyncio.create_task(
            served.http.post("/v1/products/p:evaluate", json={"dry_run": True}, headers=served.auth)
        )
        try:
            await asyncio.wait_for(pause.reached.wait(), timeout=60)
            monkeypatch.setattr(decision_service, "run_step", pause.real)  # for the writes
            await writes_go_on(served)
        finally:
            pause.go.set()
        r = await dry
        assert r.status_code == 200, r.text
        assert r.json()["dry_run"] is True

    async def test_a_dry_run_stores_nothing(self, served: Served) -> None:
        r = await served.http.post(
            "/v1/products/p:evaluate", json={"dry_run": True}, headers=served.auth
        )
        assert r.status_code == 200, r.text
        listed = await served.http.get("/v1/decisions", headers=served.auth)
        assert listed.json()["items"] == []
