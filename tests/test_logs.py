"""Logs: JSON and text lines carry request, product, decision and run ids; secrets never show."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from retrigger import logs, metrics
from tests.dispatch import conftest as dispatch_fixtures
from tests.dispatch.conftest import Live

log = logging.getLogger("retrigger.test")
live = dispatch_fixtures.live
"""Committed data on a fresh SQLite or PostgreSQL database, for dispatchers and pollers."""


@pytest.fixture
def configure(capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """``logs.configure`` writing to the captured stderr; root logger restored afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    def _configure(fmt: str = "json", level: str = "INFO") -> None:
        logs.configure(level, fmt)

    yield _configure
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def json_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines(capsys) if line.startswith("{")]


class TestLogContext:
    def test_ids_hold_inside_the_block_and_are_restored_after(self) -> None:
        assert logs.current_ids() == {}
        with logs.log_context(product="fraud"):
            with logs.log_context(decision_id=7, run_id=3):
                assert logs.current_ids() == {"product": "fraud", "decision_id": 7, "run_id": 3}
            assert logs.current_ids() == {"product": "fraud"}
        assert logs.current_ids() == {}

    def test_bind_lasts_until_the_enclosing_block_ends(self) -> None:
        with logs.log_context(product="fraud"):
            logs.bind(decision_id=12)
            assert logs.decision_id_var.get() == 12
        assert logs.decision_id_var.get() is None

    def test_ids_are_restored_when_the_block_raises(self) -> None:
        with pytest.raises(RuntimeError), logs.log_context(run_id=5):
            raise RuntimeError("boom")
        assert logs.run_id_var.get() is None


class TestJSONLines:
    def test_line_carries_context_ids_and_extras(
        self, configure: Any, capsys: pytest.CaptureFixture[str]
    ) -> None:
        configure("json")
        with logs.log_context(request_id="req-1", product="fraud", decision_id=4, run_id=9):
            log.info("launched %s", "run", extra={"attempt": 2})
        (line,) = [e for e in json_lines(capsys) if e["logger"] == "retrigger.test"]
        assert line["msg"] == "launched run"
        assert line["level"] == "INFO"
        assert (line["request_id"], line["product"]) == ("req-1", "fraud")
        assert (line["decision_id"], line["run_id"], line["attempt"]) == (4, 9, 2)

    def test_secrets_in_extras_are_redacted(
        self, configure: Any, capsys: pytest.CaptureFixture[str]
    ) -> None:
        configure("json")
        extra = {
            "password": "hunter2",
            "api_key": "rtk_abc",
            "Authorization": "Bearer rtk_abc",
            "connection_secret": "s3cr3t",
            "config": SecretStr("also-secret"),
        }
        log.warning("connecting", extra=extra)
        out = capsys.readouterr().err
        for secret in ("hunter2", "rtk_abc", "s3cr3t", "also-secret"):
            assert secret not in out
        line = json.loads(out.strip().splitlines()[-1])
        assert line["password"] == logs.REDACTED
        assert line["config"] == "**********"

    def test_level_comes_from_the_setting(
        self, configure: Any, capsys: pytest.CaptureFixture[str]
    ) -> None:
        configure("json", level="WARNING")
        log.info("quiet")
        log.warning("loud")
        assert [e["msg"] for e in json_lines(capsys)] == ["loud"]


class TestTextLines:
    def test_ids_are_appended_compactly(
        self, configure: Any, capsys: pytest.CaptureFixture[str]
    ) -> None:
        configure("text")
        log.info("no context")
        with logs.log_context(request_id="ab12", product="fraud", decision_id=4):
            try:
                raise ValueError("bad")
            except ValueError:
                log.exception("failed")
        first, second, *traceback = lines(capsys)
        assert first.endswith("retrigger.test: no context")
        assert second.endswith("failed [req=ab12 product=fraud decision=4]")
        assert traceback[-1] == "ValueError: bad"


@pytest.mark.asyncio(loop_scope="session")
class TestRequestContext:
    async def test_request_id_in_lines_logged_while_serving(
        self, app: FastAPI, client: httpx.AsyncClient, configure: Any, capsys: Any
    ) -> None:
        async def noisy() -> dict[str, str]:
            log.info("handling")
            return {}

        app.add_api_route("/noisy", noisy)
        configure("json")
        r = await client.get("/noisy", headers={"X-Request-ID": "trace-42"})
        assert r.status_code == 200
        (line,) = [e for e in json_lines(capsys) if e["msg"] == "handling"]
        assert line["request_id"] == "trace-42"
        assert logs.current_ids() == {}

    async def test_evaluation_lines_carry_product_and_decision_id(
        self,
        admin: httpx.AsyncClient,
        configure: Any,
        capsys: Any,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        observe = metrics.observe_evaluation

        def logging_observe(**kwargs: Any) -> None:
            log.info("evaluated")
            observe(**kwargs)

        monkeypatch.setattr(metrics, "observe_evaluation", logging_observe)
        assert (await admin.post("/v1/teams", json={"name": "logged"})).status_code == 201
        product = {"name": "logged-p", "team": "logged", "features": []}
        assert (await admin.post("/v1/products", json=product)).status_code == 201
        policy = {"spec": {"rules": [{"id": "age", "type": "staleness", "max_age": "30d"}]}}
        r = await admin.put(
            "/v1/products/logged-p/policy", json={**policy, "change_reason": "test"}
        )
        assert r.status_code == 200, r.text
        configure("json")
        r = await admin.post(
            "/v1/products/logged-p:evaluate", json={}, headers={"X-Request-ID": "ev-1"}
        )
        assert r.status_code == 200, r.text
        (line,) = [e for e in json_lines(capsys) if e["msg"] == "evaluated"]
        assert line["request_id"] == "ev-1"
        assert line["product"] == "logged-p"
        assert line["decision_id"] == r.json()["id"]
        assert logs.current_ids() == {}


def run_lines(capsys: pytest.CaptureFixture[str], run_id: int) -> list[dict[str, Any]]:
    """The run's own lines (``run <id> …``) among those captured since the last call."""
    return [
        e
        for e in json_lines(capsys)
        if e["logger"] == "retrigger.dispatch" and e["msg"].startswith(f"run {run_id} ")
    ]


@pytest.mark.asyncio(loop_scope="session")
class TestRunLines:
    """Real records of a run's life: created inside a request, dispatched and polled outside."""

    async def test_dispatch_and_poll_lines_carry_product_decision_and_run(
        self, live: Live, configure: Any, capsys: Any
    ) -> None:
        await live.api.connection()
        await live.api.product("logged-run", stale=False)
        configure("json")
        r = await live.api.http.post(
            "/v1/products/logged-run:retrain",
            json={"reason": "new labels"},
            headers={"X-Request-ID": "rt-7"},
        )
        assert r.status_code == 201, r.text
        decision_id, run_id = r.json()["id"], r.json()["run_id"]
        key = (await live.api.get_run(run_id))["idempotency_key"]
        ids = {"product": "logged-run", "decision_id": decision_id, "run_id": run_id}
        (created,) = run_lines(capsys, run_id)
        assert created["msg"] == (
            f"run {run_id} created for decision {decision_id} (pending, by "
            f"{created['actor']}) on connection airflow-local (airflow)"
        )
        assert created["request_id"] == "rt-7"
        assert {k: created[k] for k in ids} == ids

        assert await live.dispatcher().run_once() == 1
        (submitted,) = run_lines(capsys, run_id)
        assert submitted == {
            "ts": submitted["ts"],
            "level": "INFO",
            "logger": "retrigger.dispatch",
            "msg": f"run {run_id} pending -> submitted by dispatcher: "
            f"submitted to airflow as {key}",
            **ids,
            "from_state": "pending",
            "state": "submitted",
            "actor": "dispatcher",
        }
        assert "request_id" not in submitted  # a worker's line, not a request's

        live.fake.set_state(key, "success")
        await live.poller().run_once()
        (finished,) = run_lines(capsys, run_id)
        assert finished["msg"] == (
            f"run {run_id} submitted -> succeeded by poller: airflow reports succeeded: "
            "dag run success"
        )
        assert {k: finished[k] for k in ids} == ids
        assert logs.current_ids() == {}
