"""Every error is problem+json naming what is wrong, and a failed write writes nothing."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://")
    assert body["title"]
    assert body["detail"]
    return body


async def _team(admin: httpx.AsyncClient, name: str = "risk-ml") -> None:
    r = await admin.post("/v1/teams", json={"name": name})
    assert r.status_code == 201, r.text


class TestRouting:
    async def test_unknown_route_is_problem_404(self, admin: httpx.AsyncClient) -> None:
        assert_problem(await admin.get("/v1/nope"), 404)

    async def test_wrong_method_is_problem_405(self, admin: httpx.AsyncClient) -> None:
        assert_problem(await admin.put("/v1/teams", json={}), 405)


class TestBodies:
    async def test_malformed_json_is_400(self, admin: httpx.AsyncClient) -> None:
        r = await admin.post(
            "/v1/teams", content=b'{"name": ', headers={"content-type": "application/json"}
        )
        assert_problem(r, 400)

    async def test_wrong_content_type_is_415(self, admin: httpx.AsyncClient) -> None:
        r = await admin.post("/v1/teams", content=b"name=x", headers={"content-type": "text/plain"})
        assert_problem(r, 415)

    async def test_oversized_declared_body_is_413_before_reading(
        self, admin: httpx.AsyncClient
    ) -> None:
        big = b'{"name": "' + b"a" * (3 * 1024 * 1024) + b'"}'
        r = await admin.post("/v1/teams", content=big, headers={"content-type": "application/json"})
        assert_problem(r, 413)

    async def test_oversized_streamed_body_is_413(self, admin: httpx.AsyncClient) -> None:
        async def chunks():  # no Content-Length: counted while it streams
            yield b'{"name": "'
            for _ in range(30):
                yield b"a" * 100_000
            yield b'"}'

        r = await admin.post(
            "/v1/teams", content=chunks(), headers={"content-type": "application/json"}
        )
        assert_problem(r, 413)

    async def test_wrong_types_name_each_field(self, admin: httpx.AsyncClient) -> None:
        r = await admin.post("/v1/products", json={"name": 5, "tags": "x", "features": [{}]})
        body = assert_problem(r, 422)
        locs = {tuple(e["loc"]) for e in body["errors"]}  # type: ignore[union-attr]
        assert ("body", "name") in locs
        assert ("body", "tags") in locs
        assert ("body", "features", 0, "name") in locs

    async def test_unknown_field_on_create_is_422(self, admin: httpx.AsyncClient) -> None:
        r = await admin.post("/v1/teams", json={"name": "ok", "colour": "blue"})
        body = assert_problem(r, 422)
        assert ["body", "colour"] in [e["loc"] for e in body["errors"]]  # type: ignore[union-attr]

    async def test_too_long_name_is_422(self, admin: httpx.AsyncClient) -> None:
        r = await admin.post("/v1/teams", json={"name": "a" * 64})
        body = assert_problem(r, 422)
        assert ["body", "name"] in [e["loc"] for e in body["errors"]]  # type: ignore[union-attr]

    async def test_nan_in_feature_range_is_422(self, admin: httpx.AsyncClient) -> None:
        await _team(admin)
        r = await admin.post(
            "/v1/products",
            content=b'{"name":"p","team":"risk-ml","features":[{"name":"x","kind":"numeric","min":NaN}]}',
            headers={"content-type": "application/json"},
        )
        assert r.status_code in (400, 422)
        assert r.headers["content-type"].startswith(PROBLEM)


class TestConflicts:
    async def test_duplicate_product_is_409_and_writes_nothing(
        self, admin: httpx.AsyncClient
    ) -> None:
        await _team(admin)
        first = await admin.post("/v1/products", json={"name": "fraud", "team": "risk-ml"})
        assert first.status_code == 201
        before = (await admin.get("/v1/audit", params={"entity_type": "product"})).json()
        dup = await admin.post(
            "/v1/products", json={"name": "fraud", "team": "risk-ml", "description": "other"}
        )
        body = assert_problem(dup, 409)
        assert ["body", "name"] in [e["loc"] for e in body["errors"]]  # type: ignore[union-attr]
        after = (await admin.get("/v1/audit", params={"entity_type": "product"})).json()
        assert len(after["items"]) == len(before["items"])
        product = (await admin.get("/v1/products/fraud")).json()
        assert product["description"] == ""

    async def test_invalid_feature_schema_writes_nothing(self, admin: httpx.AsyncClient) -> None:
        await _team(admin)
        r = await admin.post(
            "/v1/products",
            json={
                "name": "p1",
                "team": "risk-ml",
                "features": [{"name": "a", "kind": "numeric"}, {"name": "a", "kind": "boolean"}],
            },
        )
        assert_problem(r, 422)
        assert_problem(await admin.get("/v1/products/p1"), 404)

    async def test_invalid_cursor_is_422_naming_cursor(self, admin: httpx.AsyncClient) -> None:
        body = assert_problem(await admin.get("/v1/products", params={"cursor": "%%%"}), 422)
        assert body["errors"][0]["loc"] == ["query", "cursor"]  # type: ignore[index]


class TestDatabaseBusy:
    @staticmethod
    def _raise(message: str) -> None:
        import sqlite3

        from sqlalchemy.exc import OperationalError

        raise OperationalError("UPDATE teams", {}, sqlite3.OperationalError(message))

    async def test_a_locked_sqlite_database_is_a_503_to_retry(
        self, admin: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from retrigger.teams import service as team_service

        async def locked(*args: object, **kwargs: object) -> None:
            self._raise("database is locked")

        monkeypatch.setattr(team_service, "create", locked)
        r = await admin.post("/v1/teams", json={"name": "busy"})
        body = assert_problem(r, 503)
        assert body["title"] == "DatabaseBusy"
        assert r.headers["retry-after"] == "1"

    async def test_other_driver_errors_stay_internal(
        self, admin: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from retrigger.teams import service as team_service

        async def broken(*args: object, **kwargs: object) -> None:
            self._raise("disk I/O error")

        monkeypatch.setattr(team_service, "create", broken)
        body = assert_problem(await admin.post("/v1/teams", json={"name": "io"}), 500)
        assert "disk" not in str(body["detail"])
