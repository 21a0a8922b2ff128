"""Background evaluation in a real ``retrigger serve``: after ingestion, and on schedule.

Evaluations after ingestion are durable: a restart inside the debounce window, an API process
that runs no background work, and batches that never stop all still end in an evaluation.
Nothing here sleeps to synchronise: every wait polls the API with a generous deadline.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np

from tests.fixtures.server import LiveServer, StartServer

DEADLINE = 60.0  # seconds; only a broken build waits this long


def decisions(http: httpx.Client, trigger: str, outcome: str | None = None) -> list[dict[str, Any]]:
    items = http.get("/v1/decisions", params={"product": "p"}).json()["items"]
    return [d for d in items if d["trigger"] == trigger and outcome in (None, d["outcome"])]


def wait_until(
    found: Callable[[], dict[str, Any] | None],
    what: str,
    timeout: float = DEADLINE,
    between: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Poll ``found`` until it returns something (``between`` runs between two polls)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = found()
        if result is not None:
            return result
        if between is not None:
            between()
        else:
            time.sleep(0.2)
    raise AssertionError(f"{what}: not within {timeout}s")


def wait_for_decision(
    http: httpx.Client, trigger: str, timeout: float = DEADLINE, outcome: str | None = None
) -> dict[str, Any]:
    def newest() -> dict[str, Any] | None:
        found = decisions(http, trigger, outcome)
        return dict(found[0]) if found else None

    return wait_until(newest, f"a {trigger} decision", timeout)


def client(server: LiveServer) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, timeout=30
    )


def setup(http: httpx.Client, rules: list[dict[str, Any]]) -> None:
    assert http.post("/v1/teams", json={"name": "ml"}).status_code == 201
    features = [{"name": "x", "kind": "numeric"}]
    product = {"name": "p", "team": "ml", "features": features}
    assert http.post("/v1/products", json=product).status_code == 201
    body = {"spec": {"rules": rules}, "change_reason": "test"}
    assert http.put("/v1/products/p/policy", json=body).status_code == 200


DRIFT = {"id": "drift", "type": "data_drift", "window": "1d"}
ALERT = {"id": "am", "type": "alert", "matchers": [{"name": "alertname", "value": "Drift"}]}
POINT = {"points": [{"name": "latency_ms", "value": 12.5}]}


def post_metric(http: httpx.Client) -> None:
    assert http.post("/v1/products/p/signals/metrics", json=POINT).status_code == 200


@contextmanager
def worker_process(server: LiveServer, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    """``retrigger worker`` on the server's database, stopped on exit."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RETRIGGER_")}
    full_env.update(
        RETRIGGER_DATABASE_URL=server.database_url, RETRIGGER_LOG_LEVEL="WARNING", **env
    )
    log = server.log.with_name("worker.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "retrigger", "worker"],
        env=full_env,
        stdout=log,
        stderr=log,
        cwd=server.log.parent,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


class TestBackgroundEvaluation:
    def test_ingestion_triggers_a_debounced_evaluation(self, start_server: StartServer) -> None:
        # a debounce far wider than the gaps between the burst's posts, even on a loaded
        # machine; whatever happens to the burst, its last evaluation must cover all of it
        with (
            start_server(RETRIGGER_EVALUATION_DEBOUNCE_SECONDS="5") as server,
            client(server) as http,
        ):
            setup(http, [DRIFT])
            rng = np.random.default_rng(0)
            reference = {"columns": {"x": rng.normal(0, 1, 2000).tolist()}}
            assert http.post("/v1/products/p/references", json=reference).status_code == 201
            for _ in range(3):  # a burst: one evaluation after the last batch
                batch = {"columns": {"x": rng.normal(1.5, 1, 500).tolist()}}
                assert http.post("/v1/products/p/signals/samples", json=batch).status_code < 300

            def covering() -> dict[str, Any] | None:
                for summary in decisions(http, "ingest"):
                    decision = http.get(f"/v1/decisions/{summary['id']}").json()
                    if decision["inputs"]["windows"]["drift"]["n_rows"] == 1500:
                        return dict(decision)
                return None

            decision = wait_until(covering, "an ingest decision reading the whole burst")
            assert decision["outcome"] == "fired"
            assert decision["fired_rules"] == ["drift"]

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


class TestDurableEvaluation:
    def test_restart_inside_the_debounce_window_still_evaluates(
        self, start_server: StartServer
    ) -> None:
        # the first server would wait an hour: it is stopped long before its timer fires
        with (
            start_server(RETRIGGER_EVALUATION_DEBOUNCE_SECONDS="3600") as first,
            client(first) as http,
        ):
            setup(http, [ALERT])
            post_metric(http)
            assert decisions(http, "ingest") == []
        # the next process finds the product marked in the database
        with (
            start_server(
                RETRIGGER_EVALUATION_DEBOUNCE_SECONDS="0.5",
                RETRIGGER_EVALUATION_MAX_DELAY_SECONDS="1",
                RETRIGGER_SCHEDULER_INTERVAL_SECONDS="0.3",
            ) as second,
            client(second) as http,
        ):
            decision = wait_for_decision(http, "ingest")
            assert decision["outcome"] == "not_fired"

    def test_a_worker_evaluates_for_an_api_without_background_work(
        self, start_server: StartServer
    ) -> None:
        with (
            start_server(
                RETRIGGER_BACKGROUND_EVALUATION="false", RETRIGGER_EMBEDDED_WORKER="false"
            ) as server,
            client(server) as http,
        ):
            setup(http, [ALERT])
            post_metric(http)
            with worker_process(
                server,
                RETRIGGER_EVALUATION_DEBOUNCE_SECONDS="0.5",
                RETRIGGER_EVALUATION_MAX_DELAY_SECONDS="1",
                RETRIGGER_SCHEDULER_INTERVAL_SECONDS="0.3",
            ):
                decision = wait_for_decision(http, "ingest")
            assert decision["outcome"] == "not_fired"

    def test_steady_traffic_is_evaluated_while_it_lasts(self, start_server: StartServer) -> None:
        # batches come faster than the debounce; only the maximum delay ends the wait
        with (
            start_server(
                RETRIGGER_EVALUATION_DEBOUNCE_SECONDS="1",
                RETRIGGER_EVALUATION_MAX_DELAY_SECONDS="3",
            ) as server,
            client(server) as http,
        ):
            setup(http, [ALERT])

            def newest() -> dict[str, Any] | None:
                found = decisions(http, "ingest")
                return dict(found[0]) if found else None

            wait_until(
                newest,
                "an ingest decision while batches keep coming",
                between=lambda: post_metric(http),
            )
