"""``retrigger demo``: the whole job in one command, printed as it happens.

Against a running server (``--url``) or one started on a temporary SQLite file, it creates a
team, a product, a connection, a policy and a reference, streams healthy then drifting samples and
a degrading accuracy, and prints each decision with its findings, then follows the run launched
on the ``fake`` orchestrator (or on a real connection described by ``--connection-file``).
"""

from __future__ import annotations

import json
import os
import random
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

Echo = Callable[[str], None]
TERMINAL = {"succeeded", "failed", "rejected", "cancelled"}
FEATURES = [
    {"name": "amount", "kind": "numeric", "min": 0},
    {"name": "country", "kind": "categorical", "categories": ["DE", "FR", "US"]},
    {"name": "is_new_device", "kind": "boolean"},
]


@dataclass
class DemoOptions:
    url: str | None = None
    token: str | None = None
    connection_file: Path | None = None
    pipeline: str = "retrain-fraud-scorer"
    keep: bool = False
    run_timeout: float = 120.0
    seed: int = 7
    extra_env: dict[str, str] = field(default_factory=dict)


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class LocalServer:
    """A running ``retrigger serve``: where it listens, its org admin key, its database, its log."""

    url: str
    token: str
    database_url: str
    log: Path


# the demo asks for each evaluation itself, so the debounced ones stay out of the way; runs are
# dispatched and followed quickly so they can be watched
DEMO_ENV: dict[str, str] = {
    "RETRIGGER_LOG_LEVEL": "WARNING",
    "RETRIGGER_EVALUATION_DEBOUNCE_SECONDS": "3600",
    "RETRIGGER_DISPATCH_INTERVAL_SECONDS": "0.5",
    "RETRIGGER_STATUS_POLL_INTERVAL_SECONDS": "1",
}


@contextmanager
def local_server(
    workdir: Path,
    env: Mapping[str, str] | None = None,
    *,
    token: str | None = None,
    timeout: float = 60.0,
) -> Iterator[LocalServer]:
    """``retrigger serve`` as a subprocess on SQLite in ``workdir`` and a free loopback port.

    Its environment is the caller's without any ``RETRIGGER_*`` setting, plus ``env``. It is
    stopped on exit; RuntimeError with the end of its log if it does not become ready in time.
    """
    if token is None:
        from retrigger.auth.tokens import generate_token

        _, token = generate_token()
    port = free_port()
    database_url = f"sqlite+aiosqlite:///{workdir / 'retrigger.db'}"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("RETRIGGER_")}
    full_env.update(
        RETRIGGER_DATABASE_URL=database_url,
        RETRIGGER_BOOTSTRAP_ADMIN_TOKEN=token,
        RETRIGGER_PORT=str(port),
        **(env or {}),
    )
    log_path = workdir / "server.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "retrigger", "serve"],
        env=full_env,
        stdout=log,
        stderr=log,
        cwd=workdir,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(log_path.read_text().splitlines()[-40:])
                raise RuntimeError(f"retrigger serve did not become ready:\n{tail}")
            time.sleep(0.1)
        yield LocalServer(url=url, token=token, database_url=database_url, log=log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


class Api:
    """A thin client that fails loudly with the problem detail."""

    def __init__(self, url: str, token: str) -> None:
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )

    def call(self, method: str, path: str, body: Any = None, ok: tuple[int, ...] = ()) -> Any:
        response = self.http.request(method, path, json=body)
        if response.status_code >= 400 and response.status_code not in ok:
            raise RuntimeError(f"{method} {path} -> {response.status_code}: {response.text}")
        return response.json() if response.content else None


def _samples(rng: random.Random, n: int, shift: float) -> dict[str, list[Any]]:
    countries = ["DE", "FR", "US"] if shift == 0 else ["US", "US", "US", "FR"]
    return {
        "amount": [round(rng.lognormvariate(3 + shift, 0.5), 2) for _ in range(n)],
        "country": [rng.choice(countries) for _ in range(n)],
        "is_new_device": [rng.random() < 0.1 + 0.4 * min(shift, 1.0) for _ in range(n)],
    }


def _policy(connection: str, pipeline: str) -> dict[str, Any]:
    return {
        "change_reason": "demo: drift or accuracy below 0.85 retrains, one retrain per hour",
        "spec": {
            "rules": [
                {
                    "id": "drift",
                    "type": "data_drift",
                    "window": "last:1000",
                    "drift_share": 0.5,
                    "min_samples": 200,
                },
                {
                    "id": "accuracy",
                    "type": "performance",
                    "metric": "accuracy",
                    "threshold": 0.85,
                    "window": "last:3",
                    "min_samples": 3,
                },
                {"id": "age", "type": "staleness", "max_age": "30d"},
            ],
            "guards": {"cooldown": "1h"},
            "target": {
                "connection": connection,
                "pipeline": pipeline,
                "parameters": {
                    "product": "{product}",
                    "run_id": "{run_id}",
                    "reasons": "{reasons}",
                    "data_window": "{window_start}/{window_end}",
                    "reference_version": "{reference_version}",
                },
            },
        },
    }


def _print_decision(echo: Echo, decision: dict[str, Any]) -> None:
    echo(f"  decision {decision['id']}: {decision['outcome'].upper()}")
    for finding in decision.get("findings", []):
        echo(f"    - {finding['rule_id']} [{finding['status']}] {finding.get('summary', '')}")
    if decision.get("suppressed_by"):
        echo(f"    suppressed by {decision['suppressed_by']}")


def scenario(api: Api, echo: Echo, options: DemoOptions) -> int:
    """Run the demo against ``api``; returns the exit code (0 when the run succeeded)."""
    rng = random.Random(options.seed)
    suffix = secrets.token_hex(2)
    team, product = f"demo-{suffix}", f"fraud-scorer-{suffix}"
    echo(f"\n1. team {team}, product {product} with 3 features")
    api.call("POST", "/v1/teams", {"name": team, "description": "retrigger demo"})
    api.call("POST", "/v1/products", {"name": product, "team": team, "features": FEATURES})
    if options.connection_file is not None:
        connection = json.loads(options.connection_file.read_text())
        api.call("POST", "/v1/connections", connection, ok=(409,))
        echo(
            f"2. connection {connection['name']} ({connection['kind']}) "
            f"from {options.connection_file}"
        )
    else:
        connection = {
            "name": f"demo-fake-{suffix}",
            "kind": "fake",
            "base_url": "http://fake.invalid",
            "options": {"duration_seconds": 4},
            "description": "demo: records the launch and 'trains' for 4 seconds",
        }
        api.call("POST", "/v1/connections", connection)
        echo(f"2. connection {connection['name']} (fake orchestrator: a run 'trains' for 4 s)")
    api.call(
        "PUT",
        f"/v1/products/{product}/policy",
        _policy(connection["name"], options.pipeline),
    )
    echo("3. policy: data drift on half the features OR accuracy < 0.85 OR older than 30 days")
    trained = datetime.now(UTC) - timedelta(days=3)
    reference = {
        "columns": _samples(rng, 5000, 0.0),
        "baseline_metrics": {"accuracy": 0.93},
        "trained_at": trained.isoformat(),
    }
    ref = api.call("POST", f"/v1/products/{product}/references", reference)
    echo(
        f"4. reference v{ref['version']}: 5000 training rows of the deployed model "
        "(trained 3 days ago, accuracy 0.93)"
    )
    phases = [("healthy", 0.0, 0.93), ("healthy", 0.0, 0.94), ("healthy", 0.0, 0.92)]
    phases += [("drifting", 0.6, 0.86), ("drifting", 0.8, 0.81), ("drifting", 1.0, 0.78)]
    run_id = None
    echo("\n5. production traffic, one evaluation per batch")
    for number, (label, shift, accuracy) in enumerate(phases, start=1):
        api.call(
            "POST",
            f"/v1/products/{product}/signals/samples",
            {"columns": _samples(rng, 500, shift)},
        )
        api.call(
            "POST",
            f"/v1/products/{product}/signals/metrics",
            {"points": [{"name": "accuracy", "value": accuracy}]},
        )
        echo(f"\n  batch {number}: 500 {label} rows, accuracy {accuracy:.2f}")
        decision = api.call("POST", f"/v1/products/{product}:evaluate", {})
        _print_decision(echo, decision)
        if decision.get("run_id"):
            run_id = decision["run_id"]
            echo(f"  -> run {run_id} created with the decision (same transaction)")
            break
        if decision.get("suppressed_by") in ("active_run", "cooldown"):
            # a background evaluation of the server (after ingestion, or on schedule) got there
            # first and launched a run
            found = _latest_run(api, product)
            if found is not None:
                run_id, trigger = found
                echo(f"  -> run {run_id} was launched by the server's own {trigger} evaluation")
                break
    if run_id is None:
        echo("\nno decision fired: nothing launched")
        return 1
    return follow_run(api, echo, run_id, options.run_timeout)


def _latest_run(api: Api, product: str) -> tuple[int, str] | None:
    """The product's newest run and the trigger of the decision that launched it."""
    runs = api.call("GET", f"/v1/runs?product={product}&limit=1")["items"]
    if not runs:
        return None
    decision = api.call("GET", f"/v1/decisions/{runs[0]['decision_id']}")
    return int(runs[0]["id"]), str(decision["trigger"])


def follow_run(api: Api, echo: Echo, run_id: int, timeout: float) -> int:
    """Print the run's transitions until it ends; 0 when it succeeded."""
    echo(f"\n6. run {run_id}")
    seen = 0
    deadline = time.monotonic() + timeout
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        run = api.call("GET", f"/v1/runs/{run_id}")
        for transition in run["transitions"][seen:]:
            echo(f"  {transition['at'][11:19]} {transition['to']:<10} {transition['cause'][:90]}")
        seen = len(run["transitions"])
        if run["state"] in TERMINAL:
            break
        time.sleep(0.5)
    else:
        echo(f"  still {run.get('state')} after {timeout:.0f} s")
        return 1
    echo(
        f"\n  {run['kind']} run {run['external_id']} (key {run['idempotency_key']}) "
        f"ended {run['state']}; model version {run['model_version']}"
    )
    echo(f"  parameters sent: {json.dumps(run['parameters'])[:300]}")
    return 0 if run["state"] == "succeeded" else 1


def main(options: DemoOptions, echo: Echo = print) -> int:
    """Run the demo on ``options.url`` or on a server of its own."""
    if options.url:
        token = options.token or os.environ.get("RETRIGGER_TOKEN")
        if not token:
            echo("--url needs an admin key: --token or RETRIGGER_TOKEN")
            return 2
        return scenario(Api(options.url, token), echo, options)
    workdir = Path(tempfile.mkdtemp(prefix="retrigger-demo-"))
    with local_server(workdir, {**DEMO_ENV, **options.extra_env}) as server:
        echo(f"started retrigger on {server.url} (SQLite in {workdir}, log in {server.log})")
        code = scenario(Api(server.url, server.token), echo, options)
        if options.keep:
            echo(
                f"\nserver still running on {server.url}; admin key: {server.token}\nCtrl-C to stop"
            )
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
        return code
