"""Webhook adapter and the Standard Webhooks signing it shares with inbound callbacks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import replace
from datetime import datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from retrigger.dispatch.orchestrators.base import (
    AuthType,
    Orchestrator,
    RetrainRequest,
    RunRef,
    RunState,
)
from retrigger.dispatch.orchestrators.webhook import (
    InvalidSignature,
    WebhookOptions,
    WebhookOrchestrator,
    sign,
    verify,
)
from retrigger.errors import InvalidConfig, OrchestratorRejected
from tests.dispatch.orchestrators import helpers
from tests.dispatch.orchestrators.helpers import CONTEXT
from tests.dispatch.orchestrators.servers import Handler, connected
from tests.dispatch.orchestrators.servers.webhook import (
    BASE_URL,
    CANCEL,
    HOOK,
    SECRET,
    WebhookServer,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

# The published Standard Webhooks test vector.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def retrain(pipeline: str = HOOK) -> RetrainRequest:
    parameters = {"epochs": 3, "grid": {"depth": [4, 6]}}
    context = {**CONTEXT, "window_end": "2024-05-08T00:00:00Z"}
    return helpers.retrain(pipeline, parameters, context=context)


def signed_headers(body: bytes, ts: int = VECTOR_TS, **extra: str) -> dict[str, str]:
    return {
        "webhook-id": VECTOR_ID,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(VECTOR_SECRET, VECTOR_ID, ts, body),
        **extra,
    }


def recorder(answer: httpx.Response) -> tuple[list[httpx.Request], Handler]:
    """A receiver that answers ``answer`` to every request, and the requests it got."""
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer

    return seen, record


@pytest.fixture
def server() -> WebhookServer:
    return WebhookServer()


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
    async def test_posts_a_signed_event(self, server: WebhookServer, adapter: Orchestrator) -> None:
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
        self, server: WebhookServer, adapter: Orchestrator
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
        async with connected(server, lambda request: answer) as adapter:
            assert (await adapter.submit(retrain())).external_id == external_id

    async def test_empty_pipeline_posts_to_the_base_url(self, server: WebhookServer) -> None:
        seen, record = recorder(httpx.Response(204))
        async with connected(server, record) as adapter:
            await adapter.submit(retrain(pipeline=""))
        assert str(seen[0].url) == BASE_URL

    @pytest.mark.parametrize("pipeline", ["https://evil.test/x", "//evil.test/x", "hooks"])
    async def test_pipeline_must_be_a_path(
        self, server: WebhookServer, adapter: Orchestrator, pipeline: str
    ) -> None:
        with pytest.raises(OrchestratorRejected, match="not a path"):
            await adapter.submit(retrain(pipeline=pipeline))
        assert server.requests == []

    async def test_bearer_connection_sends_token_and_no_signature(
        self, server: WebhookServer
    ) -> None:
        bearer = replace(server.connection, auth=AuthType.BEARER, secret=SecretStr("hook-token"))
        seen, record = recorder(httpx.Response(200))
        async with connected(server, record, connection=bearer) as adapter:
            await adapter.submit(retrain())
        assert seen[0].headers["authorization"] == "Bearer hook-token"
        assert seen[0].headers["webhook-id"] == "retrigger-run-42"
        assert "webhook-signature" not in seen[0].headers

    async def test_unusable_secret_is_rejected(self, server: WebhookServer) -> None:
        unusable = replace(server.connection, secret=SecretStr("whsec_***"))
        async with connected(server, connection=unusable) as adapter:
            with pytest.raises(OrchestratorRejected, match="base64"):
                await adapter.submit(retrain())


class TestStatus:
    async def test_waits_for_the_callback_without_calling_out(
        self, server: WebhookServer, adapter: Orchestrator
    ) -> None:
        assert WebhookOrchestrator.reports_status is False
        status = await adapter.get_status(RunRef("job-1"))
        assert (status.state, status.detail) == (RunState.RUNNING, "waiting for callback")
        assert server.requests == []


class TestCancel:
    async def test_posts_a_signed_cancelled_event(
        self, server: WebhookServer, adapter: Orchestrator
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
        async with connected(server) as adapter:
            await adapter.cancel(RunRef("job-1", data={"idempotency_key": "retrigger-run-42"}))
        assert server.requests == []

    @pytest.mark.parametrize("status", [404, 409, 410])
    async def test_receiver_not_knowing_the_run_is_no_error(
        self, server: WebhookServer, adapter: Orchestrator, status: int
    ) -> None:
        server.fail_next(status)
        await adapter.cancel(RunRef("job-1", data={"idempotency_key": "retrigger-run-42"}))


class TestErrors:
    async def test_redirect_is_rejected(self, server: WebhookServer) -> None:
        answer = httpx.Response(302, headers={"location": "https://elsewhere.test/"})
        async with connected(server, lambda request: answer) as adapter:
            with pytest.raises(OrchestratorRejected, match="not 2xx"):
                await adapter.submit(retrain())

    async def test_wrong_signature_is_refused_by_the_receiver(self, server: WebhookServer) -> None:
        other = "whsec_" + base64.b64encode(b"not-the-secret").decode()
        wrong = replace(server.connection, secret=SecretStr(other))
        async with connected(server, connection=wrong) as adapter:
            with pytest.raises(OrchestratorRejected, match="401"):
                await adapter.submit(retrain())
        assert server.launched == 0


FULL_CONTEXT: dict[str, Any] = {
    **CONTEXT,
    "idempotency_key": "retrigger-run-42",
    "fired_rules": ["drift-amount", "stale"],
    "window_start": "2024-05-01T00:00:00Z",
    "window_end": "2024-05-08T00:00:00Z",
    "reference_version": 3,
    "model_version": None,
    "policy_version": 5,
}
PARAMETERS: dict[str, Any] = {"epochs": 3, "grid": {"depth": [4, 6]}, "dry_run": False}
JENKINS: dict[str, Any] = {
    "parameter": [
        {"name": "PRODUCT", "value": "{product}"},
        {"name": "RUN_ID", "value": "{run_id}"},
        {"name": "EPOCHS", "value": "{parameters.epochs}"},
        {"name": "GRID", "value": "{parameters.grid}"},
        {"name": "DRY_RUN", "value": "{parameters.dry_run}"},
        {"name": "REASONS", "value": "{reasons}"},
        {"name": "MODEL", "value": "{model_version}"},
        {"name": "CAUSE", "value": "retrigger run {run_id} of {product}: {fired_rules}"},
    ],
    "delay": "0sec",
    "retries": 2,
    "window": "{window_start}..{window_end}",
}
"""A Jenkins ``buildWithParameters``-like body: typed values, text, and literal JSON."""


def templated(template: Any, **options: Any) -> WebhookServer:
    """A receiver whose connection renders ``template`` as the launch body."""
    return WebhookServer(WebhookOptions(body_template=template, **options))


def retrain_full(parameters: dict[str, Any] | None = None) -> RetrainRequest:
    return helpers.retrain(
        HOOK, PARAMETERS if parameters is None else parameters, context=FULL_CONTEXT
    )


async def sent_body(server: WebhookServer, request: RetrainRequest | None = None) -> Any:
    """Submit (the full-context request by default) and return the JSON body the receiver got,
    after checking it carries a valid signature over exactly those bytes."""
    async with connected(server) as adapter:
        await adapter.submit(request or retrain_full())
    (sent,) = server.requests
    verify(SECRET, sent.headers, sent.content)
    return json.loads(sent.content)


class TestBodyTemplate:
    async def test_jenkins_like_template_renders_typed_values_and_is_signed(self) -> None:
        server = templated(JENKINS)
        async with connected(server) as adapter:
            ref = await adapter.submit(retrain_full())

        (request,) = server.requests
        assert str(request.url) == "https://ml-platform.test/api/hooks/retrain"
        assert request.headers["content-type"] == "application/json"
        assert request.headers["webhook-id"] == "retrigger-run-42"
        verify(SECRET, request.headers, request.content)
        assert json.loads(request.content) == {
            "parameter": [
                {"name": "PRODUCT", "value": "fraud-scorer"},
                {"name": "RUN_ID", "value": 42},
                {"name": "EPOCHS", "value": 3},
                {"name": "GRID", "value": {"depth": [4, 6]}},
                {"name": "DRY_RUN", "value": False},
                {"name": "REASONS", "value": ["data_drift"]},
                {"name": "MODEL", "value": None},
                {"name": "CAUSE", "value": "retrigger run 42 of fraud-scorer: drift-amount; stale"},
            ],
            "delay": "0sec",
            "retries": 2,
            "window": "2024-05-01T00:00:00Z..2024-05-08T00:00:00Z",
        }
        assert ref.external_id == "job-1"
        assert ref.data == {
            "idempotency_key": "retrigger-run-42",
            "product": "fraud-scorer",
            "run_id": 42,
        }

    async def test_every_context_placeholder_keeps_its_type(self) -> None:
        names = [
            "product",
            "run_id",
            "decision_id",
            "idempotency_key",
            "reasons",
            "fired_rules",
            "window_start",
            "window_end",
            "reference_version",
            "model_version",
            "policy_version",
            "parameters",
        ]
        body = await sent_body(templated({name: f"{{{name}}}" for name in names}))
        assert body == {
            "product": "fraud-scorer",
            "run_id": 42,
            "decision_id": 7,
            "idempotency_key": "retrigger-run-42",
            "reasons": ["data_drift"],
            "fired_rules": ["drift-amount", "stale"],
            "window_start": "2024-05-01T00:00:00Z",
            "window_end": "2024-05-08T00:00:00Z",
            "reference_version": 3,
            "model_version": None,
            "policy_version": 5,
            "parameters": PARAMETERS,
        }

    @pytest.mark.parametrize(
        ("text", "rendered"),
        [
            ("run-{run_id}", "run-42"),
            ("{decision_id}/{model_version}/{window_end}", "7//2024-05-08T00:00:00Z"),
            ("why: {reasons}", "why: data_drift"),
            ("grid={parameters.grid}", 'grid={"depth":[4,6]}'),
            ("dry={parameters.dry_run}", "dry=false"),
            ("{{literal}} {product}", "{literal} fraud-scorer"),
            ("{{run_id}}", "{run_id}"),
            ("no placeholder", "no placeholder"),
        ],
    )
    async def test_embedded_placeholders_become_text(self, text: str, rendered: str) -> None:
        assert await sent_body(templated({"x": text})) == {"x": rendered}

    async def test_a_context_field_the_run_lacks_is_null(self) -> None:
        server = templated({"rules": "{fired_rules}", "policy": "{policy_version}"})
        assert await sent_body(server, retrain()) == {"rules": None, "policy": None}

    async def test_idempotency_key_comes_from_the_request(self) -> None:
        request = helpers.retrain(HOOK, {}, key="retrigger-run-9-abc123", run_id=9)
        server = templated({"key": "{idempotency_key}"})
        assert await sent_body(server, request) == {"key": "retrigger-run-9-abc123"}
        assert server.requests[0].headers["webhook-id"] == "retrigger-run-9-abc123"

    async def test_the_whole_body_may_be_one_placeholder_or_an_array(self) -> None:
        assert await sent_body(templated("{parameters}")) == PARAMETERS
        array = ["{run_id}", "{product}", 1.5, None, True]
        assert await sent_body(templated(array)) == [42, "fraud-scorer", 1.5, None, True]

    async def test_object_keys_are_taken_literally(self) -> None:
        assert await sent_body(templated({"{run_id}": "{run_id}"})) == {"{run_id}": 42}

    async def test_timestamp_is_the_signed_send_time(self) -> None:
        server = templated({"sent_at": "{timestamp}"})
        body = await sent_body(server)
        stamp = datetime.fromisoformat(body["sent_at"])
        assert body["sent_at"].endswith("Z")
        assert int(stamp.timestamp()) == int(server.requests[0].headers["webhook-timestamp"])

    async def test_missing_parameter_is_rejected_and_nothing_is_sent(self) -> None:
        server = templated({"lr": "{parameters.learning_rate}"})
        async with connected(server) as adapter:
            with pytest.raises(OrchestratorRejected, match="no parameter 'learning_rate'"):
                await adapter.submit(retrain_full())
        assert server.requests == []

    async def test_receiver_dedupes_a_repeat_by_webhook_id(self) -> None:
        server = templated(JENKINS)
        async with connected(server) as adapter:
            first = await adapter.submit(retrain_full())
            again = await adapter.submit(retrain_full())
        assert again.external_id == first.external_id
        assert server.launched == 1

    async def test_bearer_connection_sends_the_rendered_body_unsigned(self) -> None:
        server = templated({"run": "{run_id}"})
        bearer = replace(server.connection, auth=AuthType.BEARER, secret=SecretStr("hook-token"))
        seen, record = recorder(httpx.Response(200))
        async with connected(server, record, connection=bearer) as adapter:
            await adapter.submit(retrain_full())
        assert json.loads(seen[0].content) == {"run": 42}
        assert seen[0].headers["authorization"] == "Bearer hook-token"
        assert "webhook-signature" not in seen[0].headers

    async def test_cancel_keeps_its_event_envelope(self) -> None:
        server = templated(JENKINS, cancel_path=CANCEL)
        async with connected(server) as adapter:
            ref = await adapter.submit(retrain_full())
            await adapter.cancel(ref)
        request = server.requests[-1]
        verify(SECRET, request.headers, request.content)
        (event,) = server.cancelled
        assert event["type"] == "retrigger.run.cancelled"
        assert event["data"]["idempotency_key"] == "retrigger-run-42"


class TestBodyTemplateOption:
    def errors(self, template: Any) -> list[dict[str, Any]]:
        with pytest.raises(InvalidConfig) as caught:
            WebhookOrchestrator.parse_options({"body_template": template})
        return list(caught.value.errors)

    async def test_absent_or_null_means_the_event_envelope(self) -> None:
        assert WebhookOrchestrator.parse_options({}) == WebhookOptions()
        options = WebhookOrchestrator.parse_options({"body_template": None})
        assert isinstance(options, WebhookOptions)
        assert options.body_template is None

    async def test_valid_template_is_kept_as_written(self) -> None:
        options = WebhookOrchestrator.parse_options({"body_template": JENKINS})
        assert options.model_dump(mode="json", exclude_unset=True) == {"body_template": JENKINS}

    async def test_unknown_placeholder_is_named_by_its_location(self) -> None:
        template = {"parameter": [{"name": "P", "value": "{product}"}, {"value": "{prodcut}"}]}
        (error,) = self.errors(template)
        assert error["loc"] == ["body", "options", "body_template", "parameter", 1, "value"]
        assert error["type"] == "unknown_placeholder"
        assert "{prodcut}" in error["msg"]
        assert "parameters.<name>" in error["msg"]

    @pytest.mark.parametrize(
        "text", ["{parameters.}", "{parameters[epochs]}", "{}", "{0}", "{pipeline}"]
    )
    async def test_unknown_placeholders(self, text: str) -> None:
        (error,) = self.errors({"x": text})
        assert (error["loc"], error["type"]) == (
            ["body", "options", "body_template", "x"],
            "unknown_placeholder",
        )

    @pytest.mark.parametrize("text", ["{run_id", "{run_id!r}", "{run_id:>5}", "}"])
    async def test_malformed_placeholders(self, text: str) -> None:
        (error,) = self.errors([text])
        assert (error["loc"], error["type"]) == (
            ["body", "options", "body_template", 0],
            "invalid_template",
        )

    async def test_every_bad_string_is_reported(self) -> None:
        errors = self.errors({"a": "{nope}", "b": ["{run_id}", "{also_nope}"]})
        locs = [e["loc"][3:] for e in errors]
        assert sorted(locs, key=str) == [["a"], ["b", 1]]
