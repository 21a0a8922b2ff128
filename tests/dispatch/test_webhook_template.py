"""A webhook connection's ``body_template``: checked when the connection is saved, rendered with
the run's real launch context when the dispatcher launches it."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from retrigger.dispatch.dispatcher import Dispatcher
from retrigger.dispatch.orchestrators.base import ConnectionConfig
from retrigger.dispatch.orchestrators.webhook import WebhookOptions, verify
from tests.dispatch.conftest import Live, RunsApi
from tests.dispatch.orchestrators.servers.webhook import BASE_URL, HOOK, SECRET, WebhookServer

pytestmark = pytest.mark.asyncio(loop_scope="session")

SECRET_ENV = "HOOK_SIGNING_SECRET"
TEMPLATE: dict[str, Any] = {
    "job": "retrain-{product}",
    "parameter": [
        {"name": "RUN_ID", "value": "{run_id}"},
        {"name": "EPOCHS", "value": "{parameters.epochs}"},
        {"name": "RULES", "value": "{fired_rules}"},
    ],
    "key": "{idempotency_key}",
    "decision": "{decision_id}",
    "policy": "{policy_version}",
    "model": "{model_version}",
    "all": "{parameters}",
}


def webhook(name: str = "hook", template: Any = TEMPLATE) -> dict[str, Any]:
    return {
        "name": name,
        "kind": "webhook",
        "base_url": BASE_URL,
        "auth": {"type": "webhook_secret", "secret_ref": f"env:{SECRET_ENV}"},
        "options": {"body_template": template},
    }


def errors_of(r: httpx.Response) -> list[dict[str, Any]]:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return list(r.json()["errors"])


class TestSave:
    async def test_valid_template_is_stored_and_shown(self, api: RunsApi) -> None:
        r = await api.http.post("/v1/connections", json=webhook())
        assert r.status_code == 201, r.text
        assert r.json()["options"] == {"body_template": TEMPLATE}
        shown = (await api.http.get("/v1/connections/hook")).json()
        assert shown["options"] == {"body_template": TEMPLATE}

    async def test_unknown_placeholder_is_refused_naming_it(self, api: RunsApi) -> None:
        template = {"parameter": [{"name": "P", "value": "{product}"}, {"value": "{prodcut}"}]}
        r = await api.http.post("/v1/connections", json=webhook(template=template))
        (error,) = errors_of(r)
        assert error["loc"] == ["body", "options", "body_template", "parameter", 1, "value"]
        assert "{prodcut}" in error["msg"]
        assert (await api.http.get("/v1/connections")).json()["items"] == []

    async def test_malformed_placeholder_is_refused(self, api: RunsApi) -> None:
        r = await api.http.post("/v1/connections", json=webhook(template="{run_id"))
        (error,) = errors_of(r)
        assert error["loc"] == ["body", "options", "body_template"]

    async def test_replace_validates_the_template_too(self, api: RunsApi) -> None:
        assert (await api.http.post("/v1/connections", json=webhook())).status_code == 201
        body = webhook(template={"when": "{timestamp:%Y}"})
        del body["name"]
        (error,) = errors_of(await api.http.put("/v1/connections/hook", json=body))
        assert error["loc"] == ["body", "options", "body_template", "when"]
        shown = (await api.http.get("/v1/connections/hook")).json()
        assert shown["options"] == {"body_template": TEMPLATE}


class TestLaunch:
    async def test_dispatcher_sends_the_rendered_body_of_a_fired_run(
        self, live: Live, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv(SECRET_ENV, SECRET)
        r = await live.api.http.post("/v1/connections", json=webhook())
        assert r.status_code == 201, r.text
        target = {
            "connection": "hook",
            "pipeline": HOOK,
            "parameters": {"epochs": 3, "tag": "{product}-{run_id}"},
        }
        await live.api.product(target=target)
        run_id = await live.api.fired_run()
        run = await live.api.get_run(run_id)

        server = WebhookServer(WebhookOptions(body_template=TEMPLATE))

        def transport(config: ConnectionConfig) -> httpx.AsyncBaseTransport:
            return httpx.MockTransport(server.handler)

        dispatcher = Dispatcher(
            live.db,
            live.settings,
            owner="dispatcher-h",
            now=live.clock,
            transport_factory=transport,
            rng=lambda: 0.5,
        )
        assert await dispatcher.run_once() == 1

        (request,) = server.requests
        assert request.headers["webhook-id"] == run["idempotency_key"]
        verify(SECRET, request.headers, request.content)
        decision = run["decision_id"]
        assert json.loads(request.content) == {
            "job": "retrain-p",
            "parameter": [
                {"name": "RUN_ID", "value": run_id},
                {"name": "EPOCHS", "value": 3},
                {"name": "RULES", "value": ["stale"]},
            ],
            "key": run["idempotency_key"],
            "decision": decision,
            "policy": 1,
            "model": "m1",
            "all": {"epochs": 3, "tag": f"p-{run_id}"},
        }
        assert (await live.run(run_id)).state == "submitted"
