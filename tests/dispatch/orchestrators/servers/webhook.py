"""A fake webhook receiver that verifies Standard Webhooks signatures and dedupes by webhook-id."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx

from retrigger.dispatch.orchestrators.base import AuthType, RunState
from retrigger.dispatch.orchestrators.webhook import InvalidSignature, WebhookOptions, verify
from tests.dispatch.orchestrators.servers import RecordingServer

SECRET = "whsec_" + base64.b64encode(b"retrigger-test-signing-key-32byt").decode()
BASE_URL = "https://ml-platform.test/api"
HOOK = "/hooks/retrain"
CANCEL = "/hooks/cancel"


class WebhookServer(RecordingServer):
    """Accepts ``retrigger.run.requested`` at HOOK (any JSON body when the connection has a
    ``body_template``) and ``retrigger.run.cancelled`` at CANCEL."""

    kind = "webhook"
    pipeline = HOOK
    # A webhook run ends by its callback into retrigger; nothing here can be polled or driven.
    SKIPS = frozenset({"finish"})

    def __init__(self, options: WebhookOptions | None = None) -> None:
        super().__init__(
            BASE_URL,
            options or WebhookOptions(cancel_path=CANCEL),
            auth=AuthType.WEBHOOK_SECRET,
            secret=SECRET,
        )
        self.jobs: dict[str, dict[str, Any]] = {}
        """Accepted events by webhook-id, with the receiver's job id."""
        self.cancelled: list[dict[str, Any]] = []

    @property
    def launched(self) -> int:
        return len(self.jobs)

    def finish(self, external_id: str, state: RunState) -> None:
        raise NotImplementedError("a webhook run reports its end by callback")

    def serve(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api")
        if request.method != "POST" or path not in (HOOK, CANCEL):
            return httpx.Response(404, text="not found")
        try:
            verify(SECRET, request.headers, request.content)
        except InvalidSignature as exc:
            return httpx.Response(401, json={"error": exc.message})
        event = json.loads(request.content)
        msg_id = request.headers["webhook-id"]
        if path == CANCEL:
            self.cancelled.append(event)
            return httpx.Response(200, text="ok")
        # with a body_template the receiver has its own body shape: any JSON is a launch
        templated = getattr(self.connection.options, "body_template", None) is not None
        if not templated and event.get("type") != "retrigger.run.requested":
            return httpx.Response(400, json={"error": "unexpected event type"})
        job = self.jobs.setdefault(msg_id, {"id": f"job-{len(self.jobs) + 1}", "event": event})
        return httpx.Response(202, json={"id": job["id"], "status": "accepted"})


def make_server() -> WebhookServer:
    return WebhookServer()
