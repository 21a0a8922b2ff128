"""What the adapter tests share: the retrain request they submit and views of a fake's requests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import httpx

from retrigger.dispatch.orchestrators.base import Orchestrator, RetrainRequest, RunRef
from tests.dispatch.orchestrators.servers import Handler, RecordingServer

KEY: Final = "retrigger-run-42"
CONTEXT: Final[Mapping[str, Any]] = {
    "product": "fraud-scorer",
    "decision_id": 7,
    "run_id": 42,
    "reasons": ["data_drift"],
}
"""The launch context of :func:`retrain`'s request; kinds that test more of it extend it."""
WINDOW: Final[Mapping[str, Any]] = {
    "window_start": "2024-05-01T00:00:00Z",
    "window_end": "2024-05-08T00:00:00Z",
}


def retrain(
    pipeline: str,
    parameters: Mapping[str, Any],
    *,
    key: str = KEY,
    run_id: int = 42,
    context: Mapping[str, Any] = CONTEXT,
) -> RetrainRequest:
    """A retraining of ``fraud-scorer`` decided (decision 7) for data drift."""
    return RetrainRequest(
        idempotency_key=key,
        run_id=run_id,
        product="fraud-scorer",
        pipeline=pipeline,
        parameters=parameters,
        decision_id=7,
        reasons=("data_drift",),
        context=context,
    )


async def submitted(
    server: RecordingServer, adapter: Orchestrator, request: RetrainRequest
) -> RunRef:
    """Submit ``request``, then forget its requests, so that a test sees only those it causes."""
    ref = await adapter.submit(request)
    server.requests.clear()
    return ref


def calls(server: RecordingServer) -> list[tuple[str, str]]:
    """The (method, path) of every request ``server`` received."""
    return [(r.method, r.url.path) for r in server.requests]


def answering(server: RecordingServer, method: str, path: str, answer: httpx.Response) -> Handler:
    """The server's handler, except ``answer`` for ``method path`` (recorded all the same)."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == method and request.url.path == path:
            server.requests.append(request)
            return answer
        return server.handler(request)

    return handler
