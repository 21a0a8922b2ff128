"""The ``fake`` orchestrator: records submissions and plays a run forward in time.

For demos, dry runs and API tests. Idempotent on the key within a process (the ledger is
process-local); the status is computed from the submission time, so any process can poll it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from retrigger.dispatch.orchestrators.base import (
    Orchestrator,
    RemoteStatus,
    RetrainRequest,
    RunRef,
    RunState,
)


class FakeOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    outcome: Literal["succeeded", "failed"] = "succeeded"
    """How every run ends."""
    duration_seconds: float = Field(2.0, ge=0, le=86_400)
    """Seconds from submission to the end; the first half queued-then-running."""
    model_version: str | None = None
    """Model version reported by succeeded runs (default: ``<product>-<run id>``)."""


@dataclass(frozen=True)
class Submission:
    connection: str
    request: RetrainRequest
    external_id: str
    submitted_at: float


class FakeOrchestrator(Orchestrator):
    kind = "fake"
    options_model = FakeOptions

    ledger: ClassVar[dict[tuple[str, str], Submission]] = {}
    """Every submission of this process, by (connection, idempotency key)."""
    cancelled: ClassVar[set[str]] = set()
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @property
    def options(self) -> FakeOptions:
        assert isinstance(self.connection.options, FakeOptions)
        return self.connection.options

    async def submit(self, request: RetrainRequest) -> RunRef:
        key = (self.connection.name, request.idempotency_key)
        with self._lock:
            found = self.ledger.get(key)
            if found is None:
                found = Submission(
                    connection=self.connection.name,
                    request=request,
                    external_id=f"fake-{request.idempotency_key}",
                    submitted_at=time.time(),
                )
                self.ledger[key] = found
        data: dict[str, Any] = {
            "submitted_at": found.submitted_at,
            "model_version": self.options.model_version or f"{request.product}-{request.run_id}",
        }
        return RunRef(external_id=found.external_id, url=None, data=data)

    async def get_status(self, ref: RunRef) -> RemoteStatus:
        if ref.external_id in self.cancelled:
            return RemoteStatus(RunState.CANCELLED, "cancelled")
        elapsed = time.time() - float(ref.data.get("submitted_at", 0.0))
        duration = self.options.duration_seconds
        if elapsed < duration / 4:
            return RemoteStatus(RunState.QUEUED, "queued")
        if elapsed < duration:
            return RemoteStatus(RunState.RUNNING, "training")
        if self.options.outcome == "failed":
            return RemoteStatus(RunState.FAILED, "the fake pipeline failed as configured")
        return RemoteStatus(
            RunState.SUCCEEDED,
            "done",
            outputs={"model_version": ref.data.get("model_version")},
        )

    async def cancel(self, ref: RunRef) -> None:
        # a run whose time is up has ended: cancelling it changes nothing, as on a real one
        elapsed = time.time() - float(ref.data.get("submitted_at", 0.0))
        if elapsed >= self.options.duration_seconds:
            return
        with self._lock:
            self.cancelled.add(ref.external_id)

    @classmethod
    def reset(cls) -> None:
        """Forget every submission (tests)."""
        with cls._lock:
            cls.ledger.clear()
            cls.cancelled.clear()
