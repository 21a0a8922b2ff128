"""The contract every orchestrator adapter keeps, run against each fake server in ``servers/``."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable

import httpx
import pytest

from retrigger.dispatch.orchestrators import get_orchestrator
from retrigger.dispatch.orchestrators.base import (
    Orchestrator,
    RetrainRequest,
    RunRef,
    RunState,
)
from retrigger.errors import OrchestratorRejected, OrchestratorUnavailable
from tests.dispatch.orchestrators.helpers import CONTEXT, WINDOW, retrain
from tests.dispatch.orchestrators.servers import Server, connected, discover, parameters, skips

pytestmark = pytest.mark.asyncio(loop_scope="session")

SERVERS = discover()
FULL_CONTEXT = {**CONTEXT, **WINDOW, "reference_version": 3, "model_version": "fraud-scorer-11"}


def retrain_request(server: Server) -> RetrainRequest:
    # Unique keys: some fakes keep process-wide ledgers keyed by the external id.
    key = f"retrigger-run-{uuid.uuid4().hex[:12]}"
    return retrain(server.pipeline, parameters(server), key=key, context=FULL_CONTEXT)


def roundtrip(ref: RunRef) -> RunRef:
    """The ref as the dispatcher reads it back from the database."""
    stored = json.loads(json.dumps({"id": ref.external_id, "url": ref.url, "data": ref.data}))
    return RunRef(external_id=stored["id"], url=stored["url"], data=stored["data"])


def require(server: Server, area: str) -> None:
    if area in skips(server):
        pytest.skip(f"{server.kind}: '{area}' does not apply (see servers/{server.kind}.py)")


def require_status(server: Server) -> None:
    if not get_orchestrator(server.kind).reports_status:
        pytest.skip(f"{server.kind} cannot be polled")


@pytest.fixture(params=sorted(SERVERS))
def server(request: pytest.FixtureRequest) -> Server:
    factory: Callable[[], Server] = SERVERS[request.param]
    return factory()


class TestAdapterClass:
    async def test_options_forbid_unknown_fields(self, server: Server) -> None:
        cls = get_orchestrator(server.kind)
        assert cls.kind == server.kind
        assert cls.options_model.model_config.get("extra") == "forbid"
        assert isinstance(server.connection.options, cls.options_model)


class TestSubmit:
    async def test_repeat_returns_same_run(self, server: Server, adapter: Orchestrator) -> None:
        request = retrain_request(server)
        first = await adapter.submit(request)
        again = await adapter.submit(request)
        assert again == first
        assert server.launched == 1

    async def test_concurrent_submissions_launch_once(
        self, server: Server, adapter: Orchestrator
    ) -> None:
        request = retrain_request(server)
        first, second = await asyncio.gather(adapter.submit(request), adapter.submit(request))
        assert first.external_id == second.external_id
        assert server.launched == 1

    async def test_new_key_launches_new_run(self, server: Server, adapter: Orchestrator) -> None:
        first = await adapter.submit(retrain_request(server))
        second = await adapter.submit(retrain_request(server))
        assert first.external_id != second.external_id
        assert server.launched == 2

    async def test_ref_data_is_json_safe(self, server: Server, adapter: Orchestrator) -> None:
        ref = await adapter.submit(retrain_request(server))
        assert roundtrip(ref) == RunRef(ref.external_id, ref.url, dict(ref.data))


class TestFailures:
    async def test_503_then_success_on_retry(self, server: Server, adapter: Orchestrator) -> None:
        require(server, "http")
        request = retrain_request(server)
        server.fail_next(503)
        with pytest.raises(OrchestratorUnavailable):
            await adapter.submit(request)
        ref = await adapter.submit(request)
        assert ref.external_id
        assert server.launched == 1

    @pytest.mark.parametrize("status", [500, 502, 503, 504])
    async def test_5xx_is_unavailable(
        self, server: Server, adapter: Orchestrator, status: int
    ) -> None:
        require(server, "http")
        # A first submission behind: what fails is the launch itself, not e.g. an Airflow login.
        await adapter.submit(retrain_request(server))
        server.fail_next(status)
        with pytest.raises(OrchestratorUnavailable):
            await adapter.submit(retrain_request(server))
        assert server.launched == 1

    async def test_429_carries_retry_after(self, server: Server, adapter: Orchestrator) -> None:
        require(server, "http")
        server.fail_next(429, headers={"Retry-After": "7"})
        with pytest.raises(OrchestratorUnavailable) as caught:
            await adapter.submit(retrain_request(server))
        assert caught.value.retry_after == 7
        assert server.launched == 0

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
    async def test_4xx_is_rejected(
        self, server: Server, adapter: Orchestrator, status: int
    ) -> None:
        require(server, "http")
        server.fail_next(status)
        with pytest.raises(OrchestratorRejected):
            await adapter.submit(retrain_request(server))
        assert server.launched == 0

    @pytest.mark.parametrize("status", [429, 502])
    async def test_status_outage_is_unavailable(
        self, server: Server, adapter: Orchestrator, status: int
    ) -> None:
        require(server, "http")
        require_status(server)
        ref = await adapter.submit(retrain_request(server))
        server.fail_next(status, headers={"Retry-After": "30"})
        with pytest.raises(OrchestratorUnavailable) as caught:
            await adapter.get_status(ref)
        assert caught.value.retry_after == 30

    @pytest.mark.parametrize("error", [httpx.ConnectTimeout, httpx.ReadTimeout, httpx.WriteTimeout])
    async def test_timeout_is_unavailable(
        self, server: Server, error: type[httpx.TimeoutException]
    ) -> None:
        require(server, "http")

        def slow(request: httpx.Request) -> httpx.Response:
            raise error("slow", request=request)

        async with connected(server, slow) as adapter:
            with pytest.raises(OrchestratorUnavailable, match="timed out"):
                await adapter.submit(retrain_request(server))

    @pytest.mark.parametrize(
        "error",
        [httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError],
    )
    async def test_no_httpx_exception_escapes(
        self, server: Server, adapter: Orchestrator, error: type[httpx.TransportError]
    ) -> None:
        require(server, "http")
        ref = await adapter.submit(retrain_request(server))

        def explode(request: httpx.Request) -> httpx.Response:
            raise error("boom", request=request)

        async with connected(server, explode) as broken:
            with pytest.raises(OrchestratorUnavailable):
                await broken.submit(retrain_request(server))
            if get_orchestrator(server.kind).reports_status:
                with pytest.raises(OrchestratorUnavailable):
                    await broken.get_status(ref)
            if "cancel" not in skips(server):
                with pytest.raises(OrchestratorUnavailable):
                    await broken.cancel(ref)


class TestStatus:
    async def test_new_run_is_not_finished(self, server: Server, adapter: Orchestrator) -> None:
        require_status(server)
        ref = await adapter.submit(retrain_request(server))
        status = await adapter.get_status(roundtrip(ref))
        assert status.state in (RunState.QUEUED, RunState.RUNNING)

    @pytest.mark.parametrize("state", [RunState.SUCCEEDED, RunState.FAILED])
    async def test_follows_the_remote_run(
        self, server: Server, adapter: Orchestrator, state: RunState
    ) -> None:
        require_status(server)
        require(server, "finish")
        ref = await adapter.submit(retrain_request(server))
        server.finish(ref.external_id, state)
        status = await adapter.get_status(roundtrip(ref))
        assert status.state is state
        json.dumps(dict(status.outputs))


class TestCancel:
    async def test_cancel_stops_the_run(self, server: Server, adapter: Orchestrator) -> None:
        require(server, "cancel")
        ref = await adapter.submit(retrain_request(server))
        await adapter.cancel(roundtrip(ref))
        if get_orchestrator(server.kind).reports_status:
            assert (await adapter.get_status(ref)).state is RunState.CANCELLED

    async def test_cancel_of_finished_run_is_no_error(
        self, server: Server, adapter: Orchestrator
    ) -> None:
        require(server, "cancel")
        require(server, "finish")
        ref = await adapter.submit(retrain_request(server))
        server.finish(ref.external_id, RunState.SUCCEEDED)
        await adapter.cancel(roundtrip(ref))
        if get_orchestrator(server.kind).reports_status:
            assert (await adapter.get_status(ref)).state is RunState.SUCCEEDED
