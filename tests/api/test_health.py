"""Liveness, readiness (503 when the database is unreachable or behind), and /metrics."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from retrigger.config import Settings
from retrigger.main import create_app

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _client(settings: Settings) -> httpx.AsyncClient:
    app = create_app(settings)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


class TestHealth:
    async def test_healthz(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/healthz")
        assert r.status_code == 200
        assert r.json() == {"status": "ok"}

    async def test_readyz_ok_at_head(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/readyz")
        assert r.status_code == 200
        assert r.json()["status"] == "ready"

    async def test_readyz_503_when_database_unreachable(self) -> None:
        settings = Settings(database_url="postgresql+asyncpg://postgres@127.0.0.1:1/nothing")
        async with _client(settings) as http:
            r = await http.get("/readyz")
        assert r.status_code == 503
        assert r.headers["content-type"].startswith("application/problem+json")

    async def test_readyz_503_when_schema_behind(self, tmp_path: Path) -> None:
        settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
        async with _client(settings) as http:
            r = await http.get("/readyz")
        assert r.status_code == 503
        assert "retrigger db upgrade" in r.json()["detail"]


class TestMetrics:
    async def test_request_metrics_by_route_template(self, admin: httpx.AsyncClient) -> None:
        await admin.get("/v1/products/some-product")
        text = (await admin.get("/metrics")).text
        assert 'retrigger_http_requests_total{method="GET",route="/v1/products/{product}"' in text
        assert "retrigger_http_request_duration_seconds_bucket" in text
        assert "retrigger_http_requests_in_flight" in text
        assert "retrigger_build_info" in text
        assert "retrigger_db_pool_connections" in text

    async def test_request_id_is_echoed(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/healthz", headers={"X-Request-ID": "abc123"})
        assert r.headers["x-request-id"] == "abc123"
