"""Webhook adapter and the Standard Webhooks signing it shares with inbound callbacks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr

from retrigger.dispatch.orchestrators.base import (
    AuthType,
    ConnectionConfig,
    RetrainRequest,
    RunRef,
    RunState,
    make_client,
)
from retrigger.dispatch.orchestrators.webhook import (
    InvalidSignature,
    WebhookOptions,
    WebhookOrchestrator,
    sign,
    verify,
)
from retrigger.errors import InvalidConfig, OrchestratorRejected, OrchestratorUnavailable
from tests.dispatch.orchestrators.servers.webhook import CANCEL, HOOK, SECRET, WebhookServer

pytestmark = pytest.mark.asyncio(loop_scope="session")

Handler = Callable[[httpx.Request], httpx.Response]
# The published Standard Webhooks test vector.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
CONTEXT = {"product": "fraud-scorer", "decision_id": 7, "run_id": 42, "reasons": ["data_drift"]}


def retrain(pipeline: str = HOOK, key: str = "retrigger-run-42") -> RetrainRequest:
    return RetrainRequest(
        idempotency_key=key,
        run_id=42,
        product="fraud-scorer",
        pipeline=pipeline,
        parameters={"epochs": 3, "grid": {"depth": [4, 6]}},
        decision_id=7,
        reasons=("data_drift",),
        context={**CONTEXT, "window_end": "2024-05-08T00:00:00Z"},
    )


def signed_headers(body: bytes, ts: int = VECTOR_TS, **extra: str) -> dict[str, str]:
    return {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(VECTOR_SECRET, VECTOR_ID, ts, body),
        **extra,
    }


def build(
    server: WebhookServer,
    handler: Handler | None = None,
    connection: ConnectionConfig | None = None,
) -> WebhookOrchestrator:
    connection = connection or server.connection
    transport = httpx.MockTransport(handler or server.handler)
    client = make_client(WebhookOrchestrator, connection, transport=transport)
    return WebhookOrchestrator(connection, client)


@pytest.fixture
def server() -> WebhookServer:
    return WebhookServer()


@pytest_asyncio.fixture(loop_scope="session")
async def adapter(server: WebhookServer) -> AsyncIterator[WebhookOrchestrator]:
    orchestrator = build(server)
    yield orchestrator
    await orchestrator.http.aclose()


class TestSign:
    async def test_reproduces_the_standard_webhooks_vector(self) -> None:
        assert sign(VECTOR_SECRET, VECTOR_ID, VECTOR_TS, VECTOR_BODY) == VECTOR_SIGNATURE

    async def test_secret_without_prefix_is_raw_bytes(self) -> None:
        digest = hmac.new(b"plain-secret", b"m.1.{}", hashlib.sha256).digest()
        assert sign("plain-secret", "m", 1, b"{}") == "v1," + base64.b64encode(digest).decode()
        prefixed = "whsec_" + base64.b64encode(b"plain-secret").decode()
        assert sign(prefixed, "m", 1, b"{}") == sign("plain-secret", "m", 1, b"{}")

    async def test_secret_that_is_not_base64_is_invalid_config(self) -> None:
        with pytest.raises(InvalidConfig):
            sign("whsec_not base64!", "m", 1, b"{}")


class TestVerify:
    async def test_accepts_the_vector(self) -> None:
        headers = {"webhook-id": VECTOR_ID, "webhook-timestamp": str(VECTOR_TS)}
        headers["webhook-signature"] = VECTOR_SIGNATURE
        verify(VECTOR_SECRET, headers, VECTOR_BODY, now=VECTOR_TS + 10)

    async def test_header_names_are_case_insensitive(self) -> None:
        headers = {k.title(): v for k, v in signed_headers(VECTOR_BODY).items()}
        verify(VECTOR_SECRET, headers, VECTOR_BODY, now=VECTOR_TS)

    async def test_any_of_several_signatures_may_match(self) -> None:
        headers = signed_headers(VECTOR_BODY)
        headers["webhook-signature"] = f"v1,bm9wZQ== v2,xyz {headers['webhook-signature']}"
        verify(VECTOR_SECRET, headers, VECTOR_BODY, now=VECTOR_TS)

    @pytest.mark.parametrize(
        ("change", "reason"),
        [
            ({"body": b'{"test": 2432232315}'}, "no webhook-signature matches"),
            ({"secret": "whsec_" + base64.b64encode(b"other").decode()}, "no webhook-signature"),
            ({"now": VECTOR_TS + 301}, "tolerance"),
            ({"now": VECTOR_TS - 301}, "tolerance"),
            ({"headers": {"webhook-id": VECTOR_ID}}, "missing"),
            ({"headers": {**signed_headers(VECTOR_BODY), "webhook-timestamp": "x"}}, "unix"),
            ({"headers": {**signed_headers(VECTOR_BODY), "webhook-id": "other"}}, "no webhook"),
        ],
    )
    async def test_refuses(self, change: dict[str, Any], reason: str) -> None:
        args: dict[str, Any] = {
            "secret": VECTOR_SECRET,
            "headers": signed_headers(VECTOR_BODY),
            "body": VECTOR_BODY,
            "now": VECTOR_TS,
            **change,
        }
        with pytest.raises(InvalidSignature, match=reason):
            verify(args["secret"], args["headers"], args["body"], now=args["now"])

    async def test_is_an_authentication_error(self) -> None:
        assert InvalidSignature.status_code == 401


class TestSubmit:
    async def test_posts_a_signed_event(
        self, server: WebhookServer, adapter: WebhookOrchestrator
    ) -> None:
        ref = await adapter.submit(retrain())

        (request,) = server.requests
        assert request.method == "POST"
        assert str(request.url) == "https://ml-platform.test/api/hooks/retrain"
        assert request.headers["content-type"] == "application/json"
        assert request.headers["webhook-id"] == "retrigger-run-42"
        assert "authorization" not in request.headers
        verify(SECRET, request.headers, request.content)
        event = json.loads(request.content)
        stamp = datetime.fromisoformat(event.pop("timestamp"))
        assert int(stamp.timestamp()) == int(request.headers["webhook-timestamp"])
        assert event == {
            "type": "retrigger.run.requested",
            "data": {
                **CONTEXT,
                "window_end": "2024-05-08T00:00:00Z",
                "idempotency_key": "retrigger-run-42",
                "pipeline": HOOK,
                "parameters": {"epochs": 3, "grid": {"depth": [4, 6]}},
            },
        }
        assert ref == RunRef(
            "job-1",
            None,
            {"idempotency_key": "retrigger-run-42", "product": "fraud-scorer", "run_id": 42},
        )

    async def test_receiver_dedupes_a_repeat_by_webhook_id(
        self, server: WebhookServer, adapter: WebhookOrchestrator
    ) -> None:
        first = await adapter.submit(retrain())
        again = await adapter.submit(retrain())
        assert again.external_id == first.external_id
        assert server.launched == 1
        ids = {r.headers["webhook-id"] for r in server.requests}
        assert ids == {"retrigger-run-42"}

    @pytest.mark.parametrize(
        ("answer", "external_id"),
        [
            (httpx.Response(200, json={"run_id": 981}), "981"),
            (httpx.Response(201, json={"id": "abc", "run_id": 1}), "abc"),
            (httpx.Response(200, json={"status": "queued"}), "retrigger-run-42"),
            (httpx.Response(202, text="accepted"), "retrigger-run-42"),
            (httpx.Response(204), "retrigger-run-42"),
        ],
    )
    async def test_external_id_is_the_answered_id_or_the_key(
        self, server: WebhookServer, answer: httpx.Response, external_id: str
    ) -> None:
        adapter = build(server, lambda request: answer)
        assert (await adapter.submit(retrain())).external_id == external_id
        await adapter.http.aclose()

    async def test_empty_pipeline_posts_to_the_base_url(self, server: WebhookServer) -> None:
        seen: list[httpx.Request] = []

        def record(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(204)

        adapter = build(server, record)
        await adapter.submit(retrain(pipeline=""))
        assert str(seen[0].url) == "https://ml-platform.test/api"
        await adapter.http.aclose()

    @pytest.mark.parametrize("pipeline", ["https://evil.test/x", "//evil.test/x", "hooks"])
    async def test_pipeline_must_be_a_path(
        self, server: WebhookServer, adapter: WebhookOrchestrator, pipeline: str
    ) -> None:
        with pytest.raises(OrchestratorRejected, match="not a path"):
            await adapter.submit(retrain(pipeline=pipeline))
        assert server.requests == []

    async def test_bearer_connection_sends_token_and_no_signature(
        self, server: WebhookServer
    ) -> None:
        connection = ConnectionConfig(
            name="bearer",
            kind="webhook",
            base_url="https://ml-platform.test/api",
            auth=AuthType.BEARER,
            secret=SecretStr("hook-token"),
            options=WebhookOptions(),
        )
        seen: list[httpx.Request] = []

        def record(request: httpx.Request) -> httpx.Response:
            seen.append(request)
            return httpx.Response(200)

        adapter = build(server, record, connection)
        await adapter.submit(retrain())
        assert seen[0].headers["authorization"] == "Bearer hook-token"
        assert seen[0].headers["webhook-id"] == "retrigger-run-42"
        assert "webhook-signature" not in seen[0].headers
        await adapter.http.aclose()

    async def test_unusable_secret_is_rejected(self, server: WebhookServer) -> None:
        connection = ConnectionConfig(
            name="bad",
            kind="webhook",
            base_url="https://ml-platform.test/api",
            auth=AuthType.WEBHOOK_SECRET,
            secret=SecretStr("whsec_***"),
        )
        adapter = build(server, connection=connection)
        with pytest.raises(OrchestratorRejected, match="base64"):
            await adapter.submit(retrain())
        await adapter.http.aclose()


class TestStatus:
    async def test_waits_for_the_callback_without_calling_out(
        self, server: WebhookServer, adapter: WebhookOrchestrator
    ) -> None:
        assert WebhookOrchestrator.reports_status is False
        status = await adapter.get_status(RunRef("job-1"))
        assert (status.state, status.detail) == (RunState.RUNNING, "waiting for callback")
        assert server.requests == []


class TestCancel:
    async def test_posts_a_signed_cancelled_event(
        self, server: WebhookServer, adapter: WebhookOrchestrator
    ) -> None:
        ref = await adapter.submit(retrain())
        await adapter.cancel(ref)
        request = server.requests[-1]
        assert str(request.url) == f"https://ml-platform.test/api{CANCEL}"
        assert request.headers["webhook-id"] == "retrigger-run-42-cancelled"
        verify(SECRET, request.headers, request.content)
        (event,) = server.cancelled
        assert event["type"] == "retrigger.run.cancelled"
        assert event["data"] == {
            "idempotency_key": "retrigger-run-42",
            "external_id": "job-1",
            "product": "fraud-scorer",
            "run_id": 42,
        }

    async def test_without_cancel_path_nothing_is_sent(self) -> None:
        server = WebhookServer(WebhookOptions())
        adapter = build(server)
        await adapter.cancel(RunRef("job-1", data={"idempotency_key": "retrigger-run-42"}))
        assert server.requests == []
        await adapter.http.aclose()

    @pytest.mark.parametrize("status", [404, 409, 410])
    async def test_receiver_not_knowing_the_run_is_no_error(
        self, server: WebhookServer, adapter: WebhookOrchestrator, status: int
    ) -> None:
        server.fail_next(status)
        await adapter.cancel(RunRef("job-1", data={"idempotency_key": "retrigger-run-42"}))


class TestErrors:
    @pytest.mark.parametrize("status", [500, 502, 503])
    async def test_5xx_is_unavailable(
        self, server: WebhookServer, adapter: WebhookOrchestrator, status: int
    ) -> None:
        server.fail_next(status)
        with pytest.raises(OrchestratorUnavailable):
            await adapter.submit(retrain())

    async def test_429_carries_retry_after(
        self, server: WebhookServer, adapter: WebhookOrchestrator
    ) -> None:
        server.fail_next(429, headers={"Retry-After": "9"})
        with pytest.raises(OrchestratorUnavailable) as caught:
            await adapter.submit(retrain())
        assert caught.value.retry_after == 9

    async def test_timeout_is_unavailable(self, server: WebhookServer) -> None:
        def slow(request: httpx.Request) -> httpx.Response:
            raise httpx.WriteTimeout("slow", request=request)

        adapter = build(server, slow)
        with pytest.raises(OrchestratorUnavailable, match="timed out"):
            await adapter.submit(retrain())
        await adapter.http.aclose()

    @pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
    async def test_4xx_is_rejected(
        self, server: WebhookServer, adapter: WebhookOrchestrator, status: int
    ) -> None:
        server.fail_next(status)
        with pytest.raises(OrchestratorRejected):
            await adapter.submit(retrain())

    async def test_redirect_is_rejected(self, server: WebhookServer) -> None:
        answer = httpx.Response(302, headers={"location": "https://elsewhere.test/"})
        adapter = build(server, lambda request: answer)
        with pytest.raises(OrchestratorRejected, match="not 2xx"):
            await adapter.submit(retrain())
        await adapter.http.aclose()

    async def test_wrong_signature_is_refused_by_the_receiver(self, server: WebhookServer) -> None:
        connection = ConnectionConfig(
            name="wrong",
            kind="webhook",
            base_url="https://ml-platform.test/api",
            auth=AuthType.WEBHOOK_SECRET,
            secret=SecretStr("whsec_" + base64.b64encode(b"not-the-secret").decode()),
        )
        adapter = build(server, connection=connection)
        with pytest.raises(OrchestratorRejected, match="401"):
            await adapter.submit(retrain())
        assert server.launched == 0
        await adapter.http.aclose()
