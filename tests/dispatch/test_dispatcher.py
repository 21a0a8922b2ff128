"""The dispatcher and status poller on committed data, SQLite and PostgreSQL, against a fake
Airflow: retries with backoff and Retry-After, permanent refusals, leases (renewed per run, calls
bounded by them), racing dispatchers, approval, guards, secrets, runs following their remote
state, runs the orchestrator lost or that never end, and cancellations with backoff."""

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
from retrigger.dispatch.dispatcher import Dispatcher, call_budget
from retrigger.dispatch.orchestrators.airflow import CANCEL_NOTE
from retrigger.dispatch.orchestrators.base import ConnectionConfig, RemoteStatus, RunRef, RunState
from retrigger.dispatch.poller import StatusPoller
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


class TestLeaseDuringABatch:
    async def test_run_whose_lease_ran_out_mid_batch_is_submitted_once(self, live: Live) -> None:
        """A slow orchestrator makes a batch outlast the lease; another dispatcher runs alongside.

        Every call takes as long as its bound (the lease less a margin), and the second
        dispatcher makes a pass while each call is in flight: the third run's lease has run out
        before the first dispatcher reaches it, so only the second dispatcher submits it.
        """
        keys = [await pending_run(live, f"p{i}") for i in range(3)]
        budget = call_budget(live.settings)
        b = live.dispatcher("dispatcher-b")

        async def slow(request: httpx.Request) -> httpx.Response:
            if request.method == "POST":
                await b.run_once()  # b works while a waits on the orchestrator
                live.clock.advance(budget)
            return live.fake.handler(request)

        a = Dispatcher(
            live.db,
            live.settings,
            owner="dispatcher-a",
            now=live.clock,
            transport_factory=lambda cfg: httpx.MockTransport(slow),
            rng=lambda: 0.5,
        )
        assert await a.run_once() == 3
        (first, _), (second, _), (third, third_key) = keys
        # the second run's lease was renewed when a reached it, so b could not take it
        for run_id in (first, second):
            assert (await live.run(run_id)).state == "submitted"
            assert [x.worker for x in await live.attempts(run_id)] == ["dispatcher-a"]
        run = await live.run(third)
        assert (run.state, run.lease_owner, run.attempts) == ("pending", "dispatcher-a", 0)
        assert await b.run_once() == 1
        assert (await live.run(third)).state == "submitted"
        assert [x.worker for x in await live.attempts(third)] == ["dispatcher-b"]
        assert live.fake.triggers == {key: 1 for _, key in keys}
        assert live.fake.launched == 3

    async def test_call_outlasting_the_lease_is_cut_and_retried(self, live: Live) -> None:
        run_id, key = await pending_run(live)
        settings = live.settings.model_copy(update={"dispatch_lease_seconds": 0.4})

        async def hang(request: httpx.Request) -> httpx.Response:
            if request.method == "POST":
                await asyncio.Event().wait()  # an orchestrator that never answers
            return live.fake.handler(request)

        a = Dispatcher(
            live.db,
            settings,
            owner="dispatcher-a",
            now=live.clock,
            transport_factory=lambda cfg: httpx.MockTransport(hang),
            rng=lambda: 0.5,
        )
        assert await a.run_once() == 1
        run = await live.run(run_id)
        assert (run.state, run.attempts, run.lease_owner) == ("pending", 1, None)
        assert run.last_error == f"no answer within {call_budget(settings):g}s " + (
            "(the dispatch lease less a margin)"
        )
        assert [(x.result, x.error_class) for x in await live.attempts(run_id)] == [
            ("error", "timeout")
        ]
        live.clock.advance(60)
        assert await live.dispatcher("dispatcher-b").run_once() == 1
        assert (await live.run(run_id)).state == "submitted"
        assert live.fake.triggers == {key: 1}

    async def test_connection_timeout_longer_than_the_lease_is_clamped(self, live: Live) -> None:
        await live.api.connection(timeout_seconds=300)
        run_id, _ = await pending_run(live)
        seen: list[float] = []

        def transport(config: ConnectionConfig) -> httpx.AsyncBaseTransport:
            seen.append(config.timeout_seconds)
            return live.transport(config)

        dispatcher = Dispatcher(
            live.db, live.settings, now=live.clock, transport_factory=transport, rng=lambda: 0.5
        )
        await dispatcher.run_once()
        assert (await live.run(run_id)).state == "submitted"
        assert seen == [call_budget(live.settings)]
        assert call_budget(live.settings) == live.settings.dispatch_lease_seconds - 10


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
        live.fake.fail_next(503, times=live.settings.status_poll_max_failures + 1)
        poller = live.poller()
        for _ in range(live.settings.status_poll_max_failures + 1):  # never counted
            assert await poller.run_once() == 1
            run = await live.run(run_id)
            assert (run.state, run.poll_failures) == ("submitted", 0)
            assert (run.status_detail or "").startswith("status poll failed, will retry: ")
            assert "answered 503" in (run.status_detail or "")
            live.clock.advance(live.settings.status_poll_interval_seconds)
        await poller.run_once()
        run = await live.run(run_id)
        assert (run.state, run.status_detail) == ("running", "dag run running")

    async def test_cancel_after_launch_stops_the_remote_run(self, live: Live) -> None:
        run_id, key = await submitted_run(live)
        r = await live.api.act(run_id, "cancel", "launched by mistake")
        assert r.json()["state"] == "cancelled"
        assert (await live.run(run_id)).cancel_pending is True
        await live.poller().run_once()
        remote = live.fake.run(key)
        assert (remote["state"], remote["note"]) == ("failed", CANCEL_NOTE)
        assert (await live.run(run_id)).cancel_pending is False

    async def test_cancel_retries_with_backoff_then_gives_up(self, live: Live) -> None:
        run_id, _ = await submitted_run(live)
        assert (await live.api.act(run_id, "cancel")).status_code == 200
        limit = live.settings.dispatch_max_attempts
        live.fake.fail_next(503, times=limit)
        before = len(live.fake.requests)
        poller = StatusPoller(
            live.db,
            live.settings,
            now=live.clock,
            transport_factory=live.transport,
            rng=lambda: 0.5,
        )
        delays = []
        for attempt in range(1, limit):
            started = live.clock()
            assert await poller.send_cancellations() == 1
            run = await live.run(run_id)
            assert (run.cancel_pending, run.cancel_attempts) == (True, attempt)
            assert run.cancel_next_at is not None
            assert f"({attempt} of {limit} attempts)" in (run.status_detail or "")
            assert await poller.send_cancellations() == 0  # not before its backoff
            delays.append(run.cancel_next_at - started)
            live.clock.advance(delays[-1].total_seconds())
        # the dispatcher's backoff: 75% (rng 0.5) of 1 s, 2 s, 4 s
        assert delays == [timedelta(seconds=s) for s in (0.75, 1.5, 3.0)]
        assert await poller.send_cancellations() == 1
        run = await live.run(run_id)
        assert (run.state, run.cancel_pending, run.cancel_attempts) == ("cancelled", False, limit)
        assert run.last_error == run.status_detail
        assert (run.last_error or "").startswith(
            f"cancel on airflow given up, the orchestrator failed {limit} times: "
        )
        live.clock.advance(3600)
        assert await poller.send_cancellations() == 0
        assert len(live.fake.requests) - before == limit  # one refused request per attempt

    async def test_refused_cancel_is_given_up_at_once(self, live: Live) -> None:
        run_id, key = await submitted_run(live)
        assert (await live.api.act(run_id, "cancel")).status_code == 200
        live.fake.runs.pop(("train", key))  # deleted on the orchestrator: 404
        assert await live.poller().send_cancellations() == 1
        run = await live.run(run_id)
        assert (run.cancel_pending, run.cancel_attempts) == (False, 1)
        assert "given up, the orchestrator refused" in (run.last_error or "")
        assert "answered 404" in (run.last_error or "")
        shown = await live.api.get_run(run_id)
        assert shown["last_error"] == run.last_error
        assert shown["status_detail"] == run.status_detail

    async def test_two_pollers_never_send_the_same_cancel_at_once(self, live: Live) -> None:
        run_id, key = await submitted_run(live)
        assert (await live.api.act(run_id, "cancel")).status_code == 200
        first, second = live.poller(), live.poller()
        assert await first.claim_cancellations() == [run_id]
        assert await second.claim_cancellations() == []  # held for the first one
        live.clock.advance(live.settings.dispatch_lease_seconds + 1)
        assert await second.send_cancellations() == 1  # the first one died: taken over
        remote = live.fake.run(key)
        assert (remote["state"], remote["note"]) == ("failed", CANCEL_NOTE)
        assert (await live.run(run_id)).cancel_pending is False
        assert await first.send_cancellations() == 0

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


class TestLostRuns:
    """Runs the orchestrator cannot report on, or that never end, give their product back."""

    async def test_refused_polls_in_a_row_fail_the_run(self, live: Live) -> None:
        run_id, key = await submitted_run(live)
        poller, interval = live.poller(), live.settings.status_poll_interval_seconds
        limit = live.settings.status_poll_max_failures
        deleted = live.fake.runs.pop(("train", key))  # e.g. removed by a cleanup job
        for failures in (1, 2):
            assert await poller.run_once() == 1
            run = await live.run(run_id)
            assert (run.state, run.poll_failures) == ("submitted", failures)
            assert (run.status_detail or "").startswith(f"status poll refused ({failures} in a")
            live.clock.advance(interval)
        live.fake.runs[("train", key)] = deleted  # back: a good poll resets the count
        await poller.run_once()
        run = await live.run(run_id)
        assert (run.state, run.poll_failures, run.status_detail) == (
            "submitted",
            0,
            "dag run queued",
        )
        live.fake.runs.pop(("train", key))
        for _ in range(limit - 1):
            live.clock.advance(interval)
            await poller.run_once()
        assert (await live.run(run_id)).state == "submitted"
        live.clock.advance(interval)
        await poller.run_once()
        run = await live.run(run_id)
        assert (run.state, run.poll_failures) == ("failed", limit)
        assert "answered 404" in (run.last_error or "")
        shown = await live.api.get_run(run_id)
        last = shown["transitions"][-1]
        assert (last["to"], last["actor"]) == ("failed", "poller")
        assert last["cause"].startswith(f"airflow refused {limit} status polls in a row: ")
        live.clock.advance(interval)
        assert await poller.run_once() == 0  # terminal: no longer polled
        # the product is free again, even for a forced retrain
        r = await live.api.retrain(force=True)
        assert (r.status_code, r.json()["outcome"]) == (201, "fired"), r.text

    async def test_run_without_final_state_fails_after_the_max_duration(self, live: Live) -> None:
        run_id, key = await submitted_run(live)
        live.fake.set_state(key, "running")
        poller = live.poller()
        limit = live.settings.run_max_duration
        live.clock.advance(limit - 1)
        await poller.run_once()
        assert (await live.run(run_id)).state == "running"
        live.clock.advance(2)
        await poller.run_once()
        run = await live.run(run_id)
        assert run.state == "failed"
        assert (run.last_error or "").startswith("no terminal state after 2d since submission")
        shown = await live.api.get_run(run_id)
        assert (shown["transitions"][-1]["actor"], shown["last_error"]) == (
            "system",
            run.last_error,
        )
        # the pipeline was asked to stop in the same pass: one training per product
        assert run.cancel_pending is False
        remote = live.fake.run(key)
        assert (remote["state"], remote["note"]) == ("failed", CANCEL_NOTE)
        r = await live.api.retrain()
        assert (r.status_code, r.json()["outcome"]) == (201, "fired"), r.text

    async def test_run_awaiting_approval_is_rejected_after_the_timeout(self, live: Live) -> None:
        await live.api.connection()
        await live.api.product(require_approval=True)
        run_id = await live.api.fired_run()
        poller = live.poller()
        timeout = live.settings.approval_timeout
        live.clock.advance(timeout - 3600)
        assert await poller.expire_overdue() == 0
        live.clock.advance(7200)  # the run was created on the real clock: allow some slack
        assert await poller.expire_overdue() == 1
        shown = await live.api.get_run(run_id)
        assert shown["state"] == "rejected"
        last = shown["transitions"][-1]
        assert (last["from"], last["actor"]) == ("awaiting_approval", "system")
        assert last["cause"] == (
            "not approved within 7d (RETRIGGER_APPROVAL_TIMEOUT): rejected by the system"
        )
        assert await poller.expire_overdue() == 0
        assert live.fake.launched == 0

    async def test_zero_disables_the_limits(self, live: Live) -> None:
        run_id, _ = await submitted_run(live)
        settings = live.settings.model_copy(update={"run_max_duration": 0.0})
        poller = StatusPoller(live.db, settings, now=live.clock, transport_factory=live.transport)
        live.clock.advance(365 * 86_400)
        assert await poller.expire_overdue() == 0
        assert (await live.run(run_id)).state == "submitted"


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
