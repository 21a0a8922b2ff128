"""Connections API: CRUD, validation naming the field, and secrets kept out of every answer."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.auth.scopes import Scope
from tests.dispatch.conftest import RunsApi
from tests.fixtures.factories import create_key

pytestmark = pytest.mark.asyncio(loop_scope="session")

BASIC = {"type": "basic", "username": "retrigger", "secret_ref": "env:AIRFLOW_PASSWORD"}


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return dict(r.json())


class TestCrud:
    async def test_create_read_list_replace_delete(self, api: RunsApi) -> None:
        created = await api.connection("af", auth=BASIC, description="prod airflow")
        assert created["auth"] == BASIC
        assert created["base_url"] == "http://airflow.test:8080"
        assert created["options"] == {"api_version": "v2"}
        http = api.http
        assert (await http.get("/v1/connections/af")).json() == created
        listed = (await http.get("/v1/connections")).json()["items"]
        assert [c["name"] for c in listed] == ["af"]
        body = {"kind": "airflow", "base_url": "http://airflow.test:9090/", "timeout_seconds": 3}
        r = await http.put("/v1/connections/af", json=body)
        assert r.status_code == 200, r.text
        replaced = r.json()
        assert replaced["base_url"] == "http://airflow.test:9090"
        assert replaced["auth"] == {"type": "none", "username": None, "secret_ref": None}
        assert replaced["timeout_seconds"] == 3
        assert (await http.delete("/v1/connections/af")).status_code == 204
        problem(await http.get("/v1/connections/af"), 404)

    async def test_duplicate_name_is_409(self, api: RunsApi) -> None:
        await api.connection("af")
        body = {"name": "af", "kind": "fake", "base_url": "http://127.0.0.1:1"}
        problem(await api.http.post("/v1/connections", json=body), 409)

    async def test_unknown_connection_is_404(self, api: RunsApi) -> None:
        body = {"kind": "fake", "base_url": "http://127.0.0.1:1"}
        problem(await api.http.put("/v1/connections/nope", json=body), 404)
        problem(await api.http.delete("/v1/connections/nope"), 404)

    async def test_connection_used_by_a_run_cannot_be_deleted(self, api: RunsApi) -> None:
        await api.connection()
        await api.product()
        await api.fired_run()
        problem(await api.http.delete("/v1/connections/airflow-local"), 409)
        assert (await api.http.get("/v1/connections/airflow-local")).status_code == 200

    async def test_kind_cannot_change_under_an_active_run(self, api: RunsApi) -> None:
        await api.connection()
        await api.product()
        await api.fired_run()
        body = {"kind": "fake", "base_url": "http://127.0.0.1:1"}
        assert (
            "active run"
            in problem(await api.http.put("/v1/connections/airflow-local", json=body), 409)[
                "detail"
            ]
        )
        same_kind = {"kind": "airflow", "base_url": "http://airflow.test:9090"}
        assert (
            await api.http.put("/v1/connections/airflow-local", json=same_kind)
        ).status_code == 200

    async def test_needs_an_admin_key_to_write(
        self, api: RunsApi, session: AsyncSession, client: httpx.AsyncClient
    ) -> None:
        await api.connection("af")
        writer = {"Authorization": f"Bearer {await create_key(session, scopes=[Scope.write])}"}
        body = {"name": "other", "kind": "fake", "base_url": "http://127.0.0.1:1"}
        problem(await api.http.post("/v1/connections", json=body, headers=writer), 403)
        problem(await api.http.delete("/v1/connections/af", headers=writer), 403)
        assert (await api.http.get("/v1/connections/af", headers=writer)).status_code == 200
        del client.headers["Authorization"]
        problem(await client.get("/v1/connections"), 401)


def base(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"name": "af", "kind": "airflow", "base_url": "http://airflow.test"}
    body.update(overrides)
    return body


class TestValidation:
    @pytest.mark.parametrize(
        ("body", "loc"),
        [
            (base(kind="jenkins"), ["body", "kind"]),
            (base(name="Not A Slug"), ["body", "name"]),
            (base(base_url="ftp:/nowhere"), ["body", "base_url"]),
            (base(timeout_seconds=0), ["body", "timeout_seconds"]),
            (base(auth={"type": "github_token", "secret_ref": "env:T"}), ["body", "auth", "type"]),
            (base(auth={"type": "basic", "secret_ref": "env:P"}), ["body", "auth", "username"]),
            (base(auth={"type": "bearer"}), ["body", "auth", "secret_ref"]),
            (
                base(auth={"type": "bearer", "secret_ref": "vault:x"}),
                ["body", "auth", "secret_ref"],
            ),
            (base(options={"api_version": "v9"}), ["body", "options", "api_version"]),
            (base(options={"colour": "blue"}), ["body", "options", "colour"]),
            (base(surprise=True), ["body", "surprise"]),
            (base(base_url="http://user:pw@airflow.test"), ["body", "base_url"]),
        ],
    )
    async def test_bad_input_is_422_naming_the_field(
        self, api: RunsApi, body: dict[str, Any], loc: list[str]
    ) -> None:
        errors = problem(await api.http.post("/v1/connections", json=body), 422)["errors"]
        assert loc in [e["loc"] for e in errors]
        assert (await api.http.get("/v1/connections")).json()["items"] == []

    async def test_replace_validates_too(self, api: RunsApi) -> None:
        await api.connection("af")
        body = {"kind": "airflow", "base_url": "http://a", "auth": {"type": "bearer"}}
        errors = problem(await api.http.put("/v1/connections/af", json=body), 422)["errors"]
        assert errors[0]["loc"] == ["body", "auth", "secret_ref"]

    async def test_literal_secret_is_refused_and_not_echoed(self, api: RunsApi) -> None:
        literal = f"hunter2-{uuid.uuid4().hex}"
        body = base(auth={"type": "basic", "username": "u", "secret_ref": literal})
        r = await api.http.post("/v1/connections", json=body)
        assert problem(r, 422)["errors"][0]["loc"] == ["body", "auth", "secret_ref"]
        assert literal not in r.text


class TestSecretsStayOut:
    async def test_secret_value_appears_in_no_answer_audit_or_log(
        self, api: RunsApi, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        value = f"s3cret-{uuid.uuid4().hex}"
        monkeypatch.setenv("RT_TEST_AIRFLOW_PASSWORD", value)
        auth = {"type": "basic", "username": "ops", "secret_ref": "env:RT_TEST_AIRFLOW_PASSWORD"}
        http = api.http
        answers = [
            await http.post("/v1/connections", json=base(auth=auth)),
            await http.get("/v1/connections/af"),
            await http.get("/v1/connections"),
            await http.put(
                "/v1/connections/af",
                json={"kind": "airflow", "base_url": "http://airflow.test:1", "auth": auth},
            ),
            await http.get("/v1/audit", params={"entity_type": "connection"}),
        ]
        assert [r.status_code for r in answers] == [201, 200, 200, 200, 200]
        for r in answers:
            assert value not in r.text
        audit = answers[-1].json()["items"]
        assert [e["action"] for e in audit] == ["update", "create"]
        assert audit[1]["diff"]["secret_ref"]["new"] == "env:RT_TEST_AIRFLOW_PASSWORD"
        assert value not in caplog.text
