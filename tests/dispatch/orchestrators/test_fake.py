"""The ``fake`` adapter: idempotent ledger, clock-driven status, configured outcome, cancel."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from retrigger.dispatch.orchestrators.base import ConnectionConfig, RunRef, RunState
from retrigger.dispatch.orchestrators.fake import FakeOptions, FakeOrchestrator
from retrigger.errors import InvalidConfig
from tests.dispatch.orchestrators.helpers import retrain

pytestmark = pytest.mark.asyncio(loop_scope="session")

REQUEST = retrain("train", {"epochs": 3})


def no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"the fake adapter sent {request.method} {request.url}")


@pytest.fixture(autouse=True)
def clean_ledger() -> Iterator[None]:
    FakeOrchestrator.reset()
    yield
    FakeOrchestrator.reset()


@pytest_asyncio.fixture(loop_scope="session")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.MockTransport(no_network)) as client:
        yield client


def fake(http: httpx.AsyncClient, name: str = "demo", **options: Any) -> FakeOrchestrator:
    connection = ConnectionConfig(
        name=name, kind="fake", base_url="http://fake.invalid", options=FakeOptions(**options)
    )
    return FakeOrchestrator(connection, http)


def aged(ref: RunRef, seconds: float) -> RunRef:
    """``ref`` as if it had been submitted ``seconds`` ago."""
    return RunRef(ref.external_id, ref.url, {**ref.data, "submitted_at": time.time() - seconds})


class TestSubmit:
    async def test_same_key_is_one_submission(self, http: httpx.AsyncClient) -> None:
        adapter = fake(http)
        first = await adapter.submit(REQUEST)
        again = await adapter.submit(REQUEST)
        assert again == first
        assert first.external_id == "fake-retrigger-run-42"
        assert list(FakeOrchestrator.ledger) == [("demo", "retrigger-run-42")]

    async def test_concurrent_submissions_are_one(self, http: httpx.AsyncClient) -> None:
        adapter = fake(http)
        refs = await asyncio.gather(*(adapter.submit(REQUEST) for _ in range(5)))
        assert len({ref.external_id for ref in refs}) == 1
        assert len(FakeOrchestrator.ledger) == 1

    async def test_ledger_is_per_connection(self, http: httpx.AsyncClient) -> None:
        await fake(http, "a").submit(REQUEST)
        await fake(http, "b").submit(REQUEST)
        assert set(FakeOrchestrator.ledger) == {
            ("a", "retrigger-run-42"),
            ("b", "retrigger-run-42"),
        }

    async def test_records_the_request(self, http: httpx.AsyncClient) -> None:
        await fake(http).submit(REQUEST)
        (submission,) = FakeOrchestrator.ledger.values()
        assert submission.request == REQUEST
        assert submission.connection == "demo"


class TestStatus:
    async def test_zero_duration_succeeds_at_once(self, http: httpx.AsyncClient) -> None:
        adapter = fake(http, duration_seconds=0)
        status = await adapter.get_status(await adapter.submit(REQUEST))
        assert status.state is RunState.SUCCEEDED
        assert status.outputs == {"model_version": "fraud-scorer-42"}

    async def test_long_run_is_queued_after_submission(self, http: httpx.AsyncClient) -> None:
        adapter = fake(http, duration_seconds=86_400)
        status = await adapter.get_status(await adapter.submit(REQUEST))
        assert status.state is RunState.QUEUED

    @pytest.mark.parametrize(
        ("age", "state"),
        [(10, RunState.QUEUED), (500, RunState.RUNNING), (1500, RunState.SUCCEEDED)],
    )
    async def test_progresses_with_time(
        self, http: httpx.AsyncClient, age: float, state: RunState
    ) -> None:
        # Queued for the first quarter of the duration, running until it ends.
        adapter = fake(http, duration_seconds=1000)
        ref = await adapter.submit(REQUEST)
        assert (await adapter.get_status(aged(ref, age))).state is state

    async def test_configured_failure(self, http: httpx.AsyncClient) -> None:
        adapter = fake(http, duration_seconds=0, outcome="failed")
        status = await adapter.get_status(await adapter.submit(REQUEST))
        assert status.state is RunState.FAILED
        assert status.outputs == {}

    async def test_configured_model_version(self, http: httpx.AsyncClient) -> None:
        adapter = fake(http, duration_seconds=0, model_version="v7")
        status = await adapter.get_status(await adapter.submit(REQUEST))
        assert status.outputs == {"model_version": "v7"}

    async def test_status_needs_only_the_stored_ref(self, http: httpx.AsyncClient) -> None:
        # Another process polls with the ref read back from the database, not the ledger.
        ref = await fake(http, duration_seconds=1000).submit(REQUEST)
        FakeOrchestrator.reset()
        status = await fake(http, duration_seconds=1000).get_status(aged(ref, 2000))
        assert status.state is RunState.SUCCEEDED


class TestCancel:
    async def test_cancelled_run_reports_cancelled(self, http: httpx.AsyncClient) -> None:
        adapter = fake(http, duration_seconds=1000)
        ref = await adapter.submit(REQUEST)
        await adapter.cancel(ref)
        assert (await adapter.get_status(ref)).state is RunState.CANCELLED

    async def test_cancel_of_a_finished_run_is_no_error(self, http: httpx.AsyncClient) -> None:
        adapter = fake(http, duration_seconds=0)
        ref = await adapter.submit(REQUEST)
        await adapter.cancel(ref)
        assert (await adapter.get_status(ref)).state.terminal

    async def test_reset_forgets_cancellations(self, http: httpx.AsyncClient) -> None:
        adapter = fake(http, duration_seconds=0)
        ref = await adapter.submit(REQUEST)
        await adapter.cancel(ref)
        FakeOrchestrator.reset()
        assert (await adapter.get_status(ref)).state is RunState.SUCCEEDED


class TestOptions:
    @pytest.mark.parametrize(
        "options",
        [{"outcome": "crashed"}, {"duration_seconds": -1}, {"duration": 5}],
    )
    async def test_invalid_options_are_refused(self, options: dict[str, object]) -> None:
        with pytest.raises(InvalidConfig):
            FakeOrchestrator.parse_options(options)
