"""The dispatcher and status poller on committed data, SQLite and PostgreSQL, against a fake
Airflow: retries with backoff and Retry-After, permanent refusals, leases, racing dispatchers,
approval, guards, secrets, and runs following their remote state."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from base64 import b64encode
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from retrigger.db import migrate
from retrigger.db.session import Database
from retrigger.dispatch.dispatcher import Dispatcher
from retrigger.dispatch.orchestrators.airflow import CANCEL_NOTE
from retrigger.dispatch.orchestrators.base import RemoteStatus, RunRef, RunState
from retrigger.main import create_app
from tests.dispatch.conftest import TARGET, Live, RunsApi, admin_token, live_settings
from tests.fixtures.db import FreshDatabase
from tests.fixtures.orchestrators import FakeAirflow

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def pending_run(live: Live, product: str = "p", **guards: Any) -> tuple[int, str]:
    """A product with a fresh manual retrain: its pending run's id and idempotency key."""
    r = await live.api.http.get("/v1/connections/airflow-local")
    if r.status_code == 404:
        await live.api.connection()
    await live.api.product(product, stale=False, **guards)
    r = await live.api.retrain(product)
    assert r.status_code == 201, r.text
    run_id = int(r.json()["run_id"])
    key = (await live.api.get_run(run_id))["idempotency_key"]
    assert re.fullmatch(rf"retrigger-run-{run_id}-[0-9a-f]{{6}}", key), key
    return run_id, key


async def submitted_run(live: Live) -> tuple[int, str]:
    run_id, key = await pending_run(live)
    assert await live.dispatcher().run_once() == 1
    assert (await live.run(run_id)).state == "submitted"
    return run_id, key


class TestRetries:
    async def test_unavailable_then_ok_launches_exactly_once(self, live: Live) -> None:
        run_id, key = await pending_run(live)
        live.fake.fail_next(503, times=2)
        dispatcher = live.dispatcher()
        delays = []
        for _ in range(2):
            started = live.clock()
            assert await dispatcher.run_once() == 1
            run = await live.run(run_id)
            assert run.state == "pending"
            assert run.next_attempt_at is not None
            delays.append(run.next_attempt_at - started)
            assert await dispatcher.run_once() == 0  # not due yet
            live.clock.advance(delays[-1].total_seconds())
        # rng 0.5 puts the jitter at 75% of each exponential step (1 s, 2 s)
        assert delays == [timedelta(seconds=0.75), timedelta(seconds=1.5)]
        assert await dispatcher.run_once() == 1
        run = await live.run(run_id)
        assert (run.state, run.external_id, run.attempts) == ("submitted", key, 3)
        assert run.last_error is None
        assert run.external_url == f"http://airflow.test:8080/dags/train/runs/{key}"
        attempts = await live.attempts(run_id)
        assert [(a.result, a.error_class) for a in attempts] == [
            ("error", "unavailable"),
            ("error", "unavailable"),
            ("submitted", None),
        ]
        assert "answered 503" in (attempts[0].error or "")
        assert live.fake.launched == 1
        assert live.fake.triggers == {key: 1}
        conf = live.fake.run(key)["conf"]
        assert conf["product"] == "p"
        assert conf["retrigger"]["run_id"] == run_id

    @pytest.mark.parametrize("status", [429, 503])
    async def test_retry_after_is_honoured(self, live: Live, status: int) -> None:
        run_id, key = await pending_run(live)
        live.fake.fail_next(status, headers={"Retry-After": "30"})
        dispatcher = live.dispatcher()
        started = live.clock()
        await dispatcher.run_once()
        assert (await live.run(run_id)).next_attempt_at == started + timedelta(seconds=30)
        live.clock.advance(29)
        assert await dispatcher.run_once() == 0
        live.clock.advance(1)
        assert await dispatcher.run_once() == 1
        assert (await live.run(run_id)).state == "submitted"
        assert live.fake.triggers == {key: 1}

    async def test_rejection_fails_at_once(self, live: Live) -> None:
        run_id, _ = await pending_run(live)
        live.fake.fail_next(400)
        dispatcher = live.dispatcher()
        await dispatcher.run_once()
        run = await live.run(run_id)
        assert run.state == "failed"
        assert "answered 400" in (run.last_error or "")
        assert run.finished_at is not None
        assert [(a.result, a.error_class) for a in await live.attempts(run_id)] == [
            ("error", "rejected")
        ]
        live.clock.advance(3600)
        assert await dispatcher.run_once() == 0
        assert live.fake.launched == 0
        shown = await live.api.get_run(run_id)
        assert shown["transitions"][-1]["cause"].startswith("orchestrator refused")

    async def test_max_attempts_then_failed(self, live: Live) -> None:
        run_id, _ = await pending_run(live)
        live.fake.fail_next(503, times=10)
        dispatcher = live.dispatcher()
        for _ in range(live.settings.dispatch_max_attempts):
            assert await dispatcher.run_once() == 1
            live.clock.advance(live.settings.dispatch_backoff_max_seconds)
        run = await live.run(run_id)
        assert (run.state, run.attempts) == ("failed", live.settings.dispatch_max_attempts)
        assert "answered 503" in (run.last_error or "")
        assert await dispatcher.run_once() == 0
        assert live.fake.launched == 0

    async def test_answer_lost_after_launch_is_found_again(self, live: Live) -> None:
        """A timeout after the remote accepted: the retry gets 409 and adopts the run."""
        run_id, key = await pending_run(live)
        lost: list[httpx.Response] = []

        def lose_first_answer(request: httpx.Request) -> httpx.Response:
            response = live.fake.handler(request)
            if request.method == "POST" and not lost:
                lost.append(response)
                raise httpx.ReadTimeout("answer lost", request=request)
            return response

        dispatcher = Dispatcher(
            live.db,
            live.settings,
            owner="dispatcher-a",
            now=live.clock,
            transport_factory=lambda cfg: httpx.MockTransport(lose_first_answer),
            rng=lambda: 0.5,
        )
        await dispatcher.run_once()
        assert [a.error_class for a in await live.attempts(run_id)] == ["timeout"]
        live.clock.advance(60)
        await dispatcher.run_once()
        run = await live.run(run_id)
        assert (run.state, run.external_id) == ("submitted", key)
        assert live.fake.launched == 1
        assert live.fake.triggers == {key: 2}


class TestLease:
    async def test_dead_claimer_blocks_others_until_its_lease_expires(self, live: Live) -> None:
        run_id, key = await pending_run(live)
        a, b = live.dispatcher("dispatcher-a"), live.dispatcher("dispatcher-b")
        assert await a.claim() == [run_id]  # and a "dies" before submitting
        assert await b.claim() == []
        lease = live.settings.dispatch_lease_seconds
        live.clock.advance(lease - 1)
        assert await b.claim() == []
        live.clock.advance(2)
        assert await b.claim() == [run_id]
        await b.submit(run_id)
        await a.submit(run_id)  # a comes back: the run is no longer its own
        run = await live.run(run_id)
        assert (run.state, run.lease_owner) == ("submitted", None)
        assert [a.worker for a in await live.attempts(run_id)] == ["dispatcher-b"]
        assert live.fake.launched == 1
        assert live.fake.triggers == {key: 1}


class TestRace:
    @pytest.mark.parametrize("live", ["postgresql"], indirect=True)
    async def test_three_dispatchers_submit_each_run_once(self, live: Live) -> None:
        keys = {}
        for i in range(30):
            run_id, key = await pending_run(live, f"p{i}")
            keys[run_id] = key
        dispatchers = [live.dispatcher(f"racer-{n}") for n in range(3)]
        for _ in range(10):
            claimed = await asyncio.gather(*(d.run_once() for d in dispatchers))
            if sum(claimed) == 0:
                break
        assert live.fake.triggers == dict.fromkeys(keys.values(), 1)
        assert live.fake.launched == 30
        workers = set()
        for run_id in keys:
            assert (await live.run(run_id)).state == "submitted"
            attempts = await live.attempts(run_id)
            assert len(attempts) == 1
            workers.add(attempts[0].worker)
        assert len(workers) > 1  # the work was shared, not done by one dispatcher alone


class TestWhatIsDispatched:
    async def test_awaiting_approval_waits_for_approval(self, live: Live) -> None:
        await live.api.connection()
        await live.api.product(require_approval=True)
        run_id = await live.api.fired_run()
        dispatcher = live.dispatcher()
        assert await dispatcher.run_once() == 0
        r = await live.api.act(run_id, "approve", "reviewed")
        assert r.status_code == 200, r.text
        assert await dispatcher.run_once() == 1
        assert (await live.run(run_id)).state == "submitted"
        assert live.fake.launched == 1

    async def test_cancelled_before_dispatch_is_never_launched(self, live: Live) -> None:
        run_id, _ = await pending_run(live)
        assert (await live.api.act(run_id, "cancel")).status_code == 200
        assert await live.dispatcher().run_once() == 0
        assert live.fake.launched == 0

    async def test_suppressed_decisions_launch_nothing(self, live: Live) -> None:
        api = live.api
        await api.connection()
        await api.product("shadow", mode="shadow")
        await api.product("cooling", cooldown="1d")
        await api.product("budget", max_runs=1, period="7d")
        dispatcher = live.dispatcher()
        assert (await api.evaluate("shadow"))["suppressed_by"] == "shadow_mode"
        for name in ("cooling", "budget"):
            run_id = await api.fired_run(name)
            assert await dispatcher.run_once() == 1
            r = await api.http.post(f"/v1/runs/{run_id}:callback", json={"state": "succeeded"})
            assert r.status_code == 200, r.text
        assert (await api.evaluate("cooling"))["suppressed_by"] == "cooldown"
        assert (await api.evaluate("budget"))["suppressed_by"] == "max_runs"
        assert await dispatcher.run_once() == 0
        assert live.fake.launched == 2


class TestSecrets:
    async def test_secret_is_resolved_at_dispatch_and_never_shown(
        self, live: Live, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        variable = f"RT_TEST_AIRFLOW_{uuid.uuid4().hex[:8].upper()}"
        value = f"s3cret-{uuid.uuid4().hex}"
        live.fake = FakeAirflow(username="ops", password=value)
        auth = {"type": "basic", "username": "ops", "secret_ref": f"env:{variable}"}
        await live.api.connection("airflow-basic", auth=auth, options={"api_version": "v1"})
        await live.api.product(stale=False, target={**TARGET, "connection": "airflow-basic"})
        run_id = int((await live.api.retrain()).json()["run_id"])
        dispatcher = live.dispatcher()
        await dispatcher.run_once()  # the variable is not set in this process yet
        assert [a.error_class for a in await live.attempts(run_id)] == ["secret"]
        assert (await live.run(run_id)).state == "pending"
        monkeypatch.setenv(variable, value)
        live.clock.advance(60)
        await dispatcher.run_once()
        assert (await live.run(run_id)).state == "submitted"
        assert live.fake.launched == 1
        assert live.fake.auth_headers == {"Basic " + b64encode(f"ops:{value}".encode()).decode()}
        answers = [
            await live.api.http.get(f"/v1/runs/{run_id}"),
            await live.api.http.get("/v1/connections/airflow-basic"),
            await live.api.http.get("/v1/audit"),
        ]
        for r in answers:
            assert r.status_code == 200
            assert value not in r.text
        assert variable in answers[1].text
        assert value not in caplog.text


class TestPoller:
    async def test_state_follows_the_remote_run_and_terminal_stays(self, live: Live) -> None:
        run_id, key = await submitted_run(live)
        poller = live.poller()
        interval = live.settings.status_poll_interval_seconds
        assert await poller.run_once() == 1  # queued: still submitted
        assert (await live.run(run_id)).state == "submitted"
        assert await poller.run_once() == 0  # polled again only after the interval
        for remote, expected in (("running", "running"), ("success", "succeeded")):
            live.fake.set_state(key, remote)
            live.clock.advance(interval)
            assert await poller.run_once() == 1
            assert (await live.run(run_id)).state == expected
        live.fake.set_state(key, "running")
        live.clock.advance(interval)
        assert await poller.run_once() == 0
        run = await live.run(run_id)
        assert run.state == "succeeded"
        assert run.finished_at is not None
        shown = await live.api.get_run(run_id)
        assert [t["to"] for t in shown["transitions"]] == [
            "pending",
            "submitted",
            "running",
            "succeeded",
        ]
        assert {t["actor"] for t in shown["transitions"][2:]} == {"poller"}

    async def test_failed_remote_run_fails_the_run(self, live: Live) -> None:
        run_id, key = await submitted_run(live)
        live.fake.set_state(key, "failed")
        await live.poller().run_once()
        run = await live.run(run_id)
        assert run.state == "failed"
        assert run.last_error == "dag run failed"

    async def test_a_ref_resolved_by_a_poll_is_stored(self, live: Live) -> None:
        # GitHub Actions learns its run id only when a poll finds the dispatched run
        run_id, _ = await submitted_run(live)
        resolved = RunRef("9000", "https://github.test/o/r/actions/runs/9000", {"resolved": True})
        status = RemoteStatus(RunState.RUNNING, "run 9000: in_progress", ref=resolved)
        await live.poller().record(run_id, status, actor="poller")
        run = await live.run(run_id)
        assert (run.state, run.external_id) == ("running", "9000")
        assert run.external_url == resolved.url
        assert run.external_data == {"resolved": True}
        shown = await live.api.get_run(run_id)
        assert (shown["external_id"], shown["external_url"]) == ("9000", resolved.url)

    async def test_unreachable_orchestrator_leaves_the_run_as_is(self, live: Live) -> None:
        run_id, key = await submitted_run(live)
        live.fake.set_state(key, "running")
        live.fake.fail_next(503)
        poller = live.poller()
        assert await poller.run_once() == 1
        assert (await live.run(run_id)).state == "submitted"
        live.clock.advance(live.settings.status_poll_interval_seconds)
        await poller.run_once()
        assert (await live.run(run_id)).state == "running"

    async def test_cancel_after_launch_stops_the_remote_run(self, live: Live) -> None:
        run_id, key = await submitted_run(live)
        r = await live.api.act(run_id, "cancel", "launched by mistake")
        assert r.json()["state"] == "cancelled"
        assert (await live.run(run_id)).cancel_pending is True
        await live.poller().run_once()
        remote = live.fake.run(key)
        assert (remote["state"], remote["note"]) == ("failed", CANCEL_NOTE)
        assert (await live.run(run_id)).cancel_pending is False

    @staticmethod
    def interrupted(live: Live, path: str, body: dict[str, str]) -> Dispatcher:
        """A dispatcher whose trigger call lands while the API changes the run."""

        async def handler(request: httpx.Request) -> httpx.Response:
            response = live.fake.handler(request)
            if request.method == "POST":
                r = await live.api.http.post(path, json=body)
                assert r.status_code == 200, r.text
            return response

        return Dispatcher(
            live.db,
            live.settings,
            owner="dispatcher-a",
            now=live.clock,
            transport_factory=lambda cfg: httpx.MockTransport(handler),
            rng=lambda: 0.5,
        )

    async def test_cancel_during_submission_still_stops_the_remote_run(self, live: Live) -> None:
        """The launch lands after the run was cancelled: it is kept and stopped, not orphaned."""
        run_id, key = await pending_run(live)
        body = {"reason": "changed my mind"}
        await self.interrupted(live, f"/v1/runs/{run_id}:cancel", body).run_once()
        run = await live.run(run_id)
        assert (run.state, run.external_id, run.cancel_pending) == ("cancelled", key, True)
        await live.poller().run_once()
        remote = live.fake.run(key)
        assert (remote["state"], remote["note"]) == ("failed", CANCEL_NOTE)
        assert (await live.run(run_id)).cancel_pending is False

    async def test_callback_during_submission_keeps_the_launch_followed(self, live: Live) -> None:
        """The pipeline reports before the dispatcher records: the run still learns its id."""
        run_id, key = await pending_run(live)
        body = {"state": "running"}
        await self.interrupted(live, f"/v1/runs/{run_id}:callback", body).run_once()
        run = await live.run(run_id)
        assert (run.state, run.external_id, run.cancel_pending) == ("running", key, False)
        live.fake.set_state(key, "success")
        await live.poller().run_once()
        assert (await live.run(run_id)).state == "succeeded"
        assert live.fake.triggers == {key: 1}


class TestKeyPrefix:
    async def test_keys_carry_the_prefix_of_the_apps_own_settings(self, tmp_path: Path) -> None:
        async with FreshDatabase("sqlite", tmp_path) as url:
            settings = live_settings(url, run_key_prefix="staging")
            db = Database.from_settings(settings)
            try:
                await migrate.upgrade(db.engine)
                token = await admin_token(db)
                transport = httpx.ASGITransport(app=create_app(settings, database=db))
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                    http.headers["Authorization"] = f"Bearer {token}"
                    api = RunsApi(http)
                    await api.connection()
                    await api.product()
                    run_id = await api.fired_run()
                    run = await api.get_run(run_id)
            finally:
                await db.dispose()
        assert run["idempotency_key"].startswith(f"staging-run-{run_id}-")
