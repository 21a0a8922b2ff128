"""What the real-orchestrator tests share: requests, a connected adapter, bounded state polls."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from retrigger.dispatch.orchestrators.base import (
    ConnectionConfig,
    Orchestrator,
    RemoteStatus,
    RetrainRequest,
    RunRef,
    RunState,
    make_client,
)
from retrigger.errors import OrchestratorUnavailable

AdapterT = TypeVar("AdapterT", bound=Orchestrator)

FINISHED = frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED})
_run_ids = itertools.count(1)


def retrain_request(
    pipeline: str,
    *,
    wrap: Callable[[dict[str, Any]], dict[str, Any]] = dict,
    **parameters: Any,
) -> RetrainRequest:
    """A request with a fresh key; parameters ``product`` and ``run`` plus ``parameters``, passed
    through ``wrap`` where the orchestrator wants them nested (Dagster run config)."""
    run_id = next(_run_ids)
    return RetrainRequest(
        idempotency_key=f"retrigger-it-{uuid.uuid4().hex[:12]}",
        run_id=run_id,
        product="churn",
        pipeline=pipeline,
        parameters=wrap({"product": "churn", "run": str(run_id), **parameters}),
        decision_id=run_id,
        reasons=("drift",),
        context={"product": "churn", "run_id": run_id, "reasons": ["drift"]},
    )


@contextlib.asynccontextmanager
async def connected(kind: type[AdapterT], connection: ConnectionConfig) -> AsyncIterator[AdapterT]:
    """The adapter on a client made as the dispatcher makes it; closed afterwards."""
    async with make_client(kind, connection) as http:
        yield kind(connection, http)


async def wait_state(
    orchestrator: Orchestrator,
    ref: RunRef,
    *,
    until: frozenset[RunState] = FINISHED,
    timeout: float = 120.0,
    interval: float = 0.5,
) -> tuple[RemoteStatus, list[RunState]]:
    """Poll ``get_status`` until one of ``until`` or a terminal state (bounded by ``timeout``
    seconds); return that status and every state seen."""
    seen: list[RunState] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            status: RemoteStatus | None = await orchestrator.get_status(ref)
        except OrchestratorUnavailable:
            status = None  # as the status poller does: a busy peer is asked again at the next tick
        if status is not None:
            if not seen or seen[-1] is not status.state:
                seen.append(status.state)
            if status.state in until or status.state.terminal:
                return status, seen
        assert loop.time() < deadline, f"still {status} after {timeout:.0f} s: {seen}"
        await asyncio.sleep(interval)
