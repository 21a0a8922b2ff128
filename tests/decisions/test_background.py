"""Background evaluation in a real ``retrigger serve``: after ingestion, and on schedule."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np

from tests.fixtures.server import LiveServer


def wait_for_decision(
    http: httpx.Client, trigger: str, timeout: float = 15.0, outcome: str | None = None
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = http.get("/v1/decisions", params={"product": "p"}).json()["items"]
        found = [d for d in items if d["trigger"] == trigger and outcome in (None, d["outcome"])]
        if found:
            return dict(found[0])
        time.sleep(0.2)
    raise AssertionError(f"no {trigger} decision within {timeout}s")


def client(server: LiveServer) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, timeout=10
    )


def setup(http: httpx.Client, rules: list[dict[str, Any]]) -> None:
    assert http.post("/v1/teams", json={"name": "ml"}).status_code == 201
    features = [{"name": "x", "kind": "numeric"}]
    product = {"name": "p", "team": "ml", "features": features}
    assert http.post("/v1/products", json=product).status_code == 201
    body = {"spec": {"rules": rules}, "change_reason": "test"}
    assert http.put("/v1/products/p/policy", json=body).status_code == 200


class TestBackgroundEvaluation:
    def test_ingestion_triggers_a_debounced_evaluation(self, live_server: LiveServer) -> None:
        with client(live_server) as http:
            setup(http, [{"id": "drift", "type": "data_drift", "window": "1d"}])
            rng = np.random.default_rng(0)
            reference = {"columns": {"x": rng.normal(0, 1, 2000).tolist()}}
            assert http.post("/v1/products/p/references", json=reference).status_code == 201
            for _ in range(3):  # a burst: one evaluation after the last batch
                batch = {"columns": {"x": rng.normal(1.5, 1, 500).tolist()}}
                assert http.post("/v1/products/p/signals/samples", json=batch).status_code < 300
            decision = wait_for_decision(http, "ingest")
            assert decision["outcome"] == "fired"
            time.sleep(2.0)  # longer than the debounce: a second evaluation would show by now
            items = http.get("/v1/decisions", params={"product": "p"}).json()["items"]
            assert len([d for d in items if d["trigger"] == "ingest"]) == 1

    def test_scheduler_evaluates_time_rules(self, live_server: LiveServer) -> None:
        with client(live_server) as http:
            setup(http, [{"id": "age", "type": "staleness", "max_age": "7d"}])
            trained = (datetime.now(UTC) - timedelta(days=10)).isoformat()
            reference = {"columns": {"x": [1.0, 2.0, 3.0]}, "trained_at": trained}
            assert http.post("/v1/products/p/references", json=reference).status_code == 201
            # A tick between the policy and the reference decides insufficient_data (no model
            # age yet); the first tick after the reference fires.
            decision = wait_for_decision(http, "schedule", outcome="fired")
            assert decision["fired_rules"] == ["age"]
