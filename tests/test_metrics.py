"""Prometheus metrics: counters move when the API is driven, gauges follow the last evaluation,
label sets stay bounded, and multi-process mode merges every worker's metrics."""

from __future__ import annotations

import logging
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import pytest_asyncio
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncSession
from typer.testing import CliRunner

from retrigger import metrics
from retrigger.auth.scopes import Scope
from retrigger.config import Settings
from retrigger.db import migrate
from retrigger.db.session import Database
from retrigger.decisions import service as decision_service
from retrigger.decisions.scheduler import EvaluationScheduler
from retrigger.products.models import Product
from retrigger.references import service as reference_service
from retrigger.teams.models import Team
from tests.fixtures.factories import create_key, create_product, create_team, unique

asyncio_mark = pytest.mark.asyncio(loop_scope="session")


def value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def count(name: str, **labels: str) -> float:
    return value(name, **labels) or 0.0


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest_asyncio.fixture(loop_scope="session")
async def ingest(session: AsyncSession) -> tuple[str, dict[str, str]]:
    """A product of its own (label values unique to the test) and an ingest key's header."""
    team = await create_team(session)
    product = await create_product(session, team=team, name=unique("metered"))
    token = await create_key(session, scopes=[Scope.ingest], team=team)
    return product.name, {"Authorization": f"Bearer {token}"}


def alert(product: str, fingerprint: str) -> dict[str, Any]:
    return {
        "status": "firing",
        "labels": {"alertname": "DriftHigh", "product": product},
        "startsAt": "2026-01-01T00:00:00Z",
        "fingerprint": fingerprint,
    }


@asyncio_mark
class TestIngestionMetrics:
    async def test_accepted_duplicate_and_rejected_batches(
        self, client: httpx.AsyncClient, ingest: tuple[str, dict[str, str]]
    ) -> None:
        product, auth = ingest
        url = f"/v1/products/{product}/signals/metrics"
        body = {"points": [{"name": "accuracy", "value": v} for v in (0.9, 0.8, 0.7)]}
        batches = count("retrigger_ingest_batch_size_count", kind="metrics")
        keyed = {**auth, "Idempotency-Key": "batch-1"}
        assert (await client.post(url, json=body, headers=keyed)).status_code == 200
        assert (await client.post(url, json=body, headers=keyed)).status_code == 200
        future = iso(datetime.now(UTC) + timedelta(days=2))
        late = {"points": [{"name": "accuracy", "value": 1.0, "time": future}] * 2}
        assert (await client.post(url, json=late, headers=auth)).status_code == 422
        labels = {"kind": "metrics", "product": product}
        assert count("retrigger_signals_ingested_total", **labels, outcome="accepted") == 3
        assert count("retrigger_signals_ingested_total", **labels, outcome="duplicate") == 3
        assert count("retrigger_signals_ingested_total", **labels, outcome="rejected") == 2
        assert count("retrigger_ingest_batch_size_count", kind="metrics") == batches + 1

    async def test_samples_and_outcomes_count_rows(
        self, client: httpx.AsyncClient, ingest: tuple[str, dict[str, str]]
    ) -> None:
        product, auth = ingest
        rows = {"rows": [{"amount": 1.0}, {"amount": 2.0}]}
        columns = {"columns": {"amount": [1.0, 2.0, 3.0, 4.0]}}
        for body in (rows, columns):
            r = await client.post(
                f"/v1/products/{product}/signals/samples", json=body, headers=auth
            )
            assert r.status_code == 200, r.text
        outcomes = {"outcomes": [{"prediction_id": f"p{i}", "prediction": 1} for i in range(5)]}
        r = await client.post(
            f"/v1/products/{product}/signals/outcomes", json=outcomes, headers=auth
        )
        assert r.status_code == 200, r.text
        accepted = {"product": product, "outcome": "accepted"}
        assert count("retrigger_signals_ingested_total", kind="samples", **accepted) == 6
        assert count("retrigger_signals_ingested_total", kind="outcomes", **accepted) == 5

    async def test_alerts_by_product_with_unknown_products_pooled(
        self, client: httpx.AsyncClient, ingest: tuple[str, dict[str, str]]
    ) -> None:
        product, auth = ingest
        stranger = unique("no-such-product")
        payload = {
            "status": "firing",
            "alerts": [alert(product, "a1"), alert(product, "a2"), alert(stranger, "a3")],
        }
        rejected = count(
            "retrigger_signals_ingested_total",
            kind="alerts",
            product=metrics.UNKNOWN_PRODUCT,
            outcome="rejected",
        )
        for _ in range(2):  # the second delivery is a redelivery
            r = await client.post("/v1/webhooks/alertmanager", json=payload, headers=auth)
            assert r.status_code == 200, r.text
        labels = {"kind": "alerts", "product": product}
        assert count("retrigger_signals_ingested_total", **labels, outcome="accepted") == 2
        assert count("retrigger_signals_ingested_total", **labels, outcome="duplicate") == 2
        unknown = {"kind": "alerts", "product": metrics.UNKNOWN_PRODUCT, "outcome": "rejected"}
        assert count("retrigger_signals_ingested_total", **unknown) == rejected + 2
        assert not series_with_label_value(stranger)


def series_with_label_value(text: str) -> list[str]:
    return [
        sample.name
        for family in REGISTRY.collect()
        for sample in family.samples
        if text in sample.labels.values()
    ]


ALLOWED_LABELS = {
    "method", "route", "status", "reason", "kind", "product", "outcome", "trigger", "rule_type",
    "guard", "feature", "test", "state", "result", "error_class", "version", "python", "le",
}  # fmt: skip


@asyncio_mark
class TestBoundedLabels:
    async def test_unknown_product_names_never_become_labels(
        self, client: httpx.AsyncClient, ingest: tuple[str, dict[str, str]]
    ) -> None:
        _, auth = ingest
        names = [unique("ghost") for _ in range(3)]
        for name in names:
            body = {"points": [{"name": "accuracy", "value": 0.5}]}
            r = await client.post(f"/v1/products/{name}/signals/metrics", json=body, headers=auth)
            assert r.status_code == 404
        assert not any(series_with_label_value(name) for name in names)


class TestLabelVocabulary:
    def test_every_label_name_is_from_the_bounded_vocabulary(self) -> None:
        for family in REGISTRY.collect():
            if family.name.startswith("retrigger_"):
                for sample in family.samples:
                    assert set(sample.labels) <= ALLOWED_LABELS, sample

    @pytest.mark.parametrize(
        ("call", "args"),
        [
            (metrics.observe_ingest, ("metrics", "p", "maybe", 1)),
            (metrics.observe_ingest, ("logs", "p", "accepted", 1)),
            (metrics.observe_run_transition, ("fake", "exploded")),
            (metrics.observe_dispatch_attempt, ("fake", "retry", "SomeException")),
            (metrics.observe_submit_to_terminal, ("fake", "running", 1.0)),
            (metrics.set_run_counts, ({"weird": 1}, 0.0)),
        ],
    )
    def test_values_outside_a_vocabulary_are_refused(self, call: Any, args: tuple[Any]) -> None:
        with pytest.raises(ValueError, match="must be one of"):
            call(*args)


DRIFT = {"id": "drift", "type": "data_drift", "window": "1d", "drift_share": 0.5}
STALE = {"id": "stale", "type": "staleness", "max_age": "1d"}
FEATURES = [{"name": "x", "kind": "numeric"}, {"name": "c", "kind": "categorical"}]


async def setup_product(admin: httpx.AsyncClient, rules: list[Any], **guards: Any) -> str:
    team, product = unique("team"), unique("scored")
    assert (await admin.post("/v1/teams", json={"name": team})).status_code == 201
    body = {"name": product, "team": team, "features": FEATURES}
    assert (await admin.post("/v1/products", json=body)).status_code == 201
    policy = {"spec": {"rules": rules, "guards": guards}, "change_reason": "metrics test"}
    r = await admin.put(f"/v1/products/{product}/policy", json=policy)
    assert r.status_code == 200, r.text
    return product


def columns(rng: np.random.Generator, shift: float, n: int) -> dict[str, Any]:
    return {
        "x": rng.normal(shift, 1, n).tolist(),
        "c": rng.choice(["a", "b"], n, p=[0.6, 0.4]).tolist(),
    }


async def evaluate(admin: httpx.AsyncClient, product: str, **body: Any) -> dict[str, Any]:
    r = await admin.post(f"/v1/products/{product}:evaluate", json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


@asyncio_mark
class TestEvaluationMetrics:
    async def test_drift_gauges_follow_the_stored_evaluation(
        self, admin: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # profiles are cached by reference id, and ids come back after each test's rollback:
        # a private cache keeps this test's reference out of later tests' evaluations
        cache = type(reference_service._PROFILES)()
        monkeypatch.setattr(reference_service, "_PROFILES", cache)
        product = await setup_product(admin, [DRIFT], cooldown=None)
        rng = np.random.default_rng(7)
        reference = {"columns": columns(rng, 0.0, 800)}
        assert (await admin.post(f"/v1/products/{product}/references", json=reference)).is_success
        samples = {"columns": columns(rng, 1.0, 800)}
        r = await admin.post(f"/v1/products/{product}/signals/samples", json=samples)
        assert r.status_code == 200, r.text
        api_runs = count("retrigger_evaluation_duration_seconds_count", trigger="api")
        fired = count("retrigger_rules_fired_total", rule_type="data_drift")
        await evaluate(admin, product, dry_run=True)
        assert count("retrigger_evaluations_total", product=product, outcome="fired") == 0
        decision = await evaluate(admin, product)
        assert decision["outcome"] == "fired", decision["reason"]
        assert count("retrigger_evaluations_total", product=product, outcome="fired") == 1
        assert count("retrigger_evaluation_duration_seconds_count", trigger="api") == api_runs + 1
        assert count("retrigger_rules_fired_total", rule_type="data_drift") == fired + 1
        features = decision["findings"][0]["details"]["features"]
        assert set(features) == {"x", "c"}
        for feature, entry in features.items():
            labels = {"product": product, "feature": feature, "test": entry["test"]}
            result = entry["result"]
            statistic = value("retrigger_feature_drift_statistic", **labels)
            assert statistic == pytest.approx(result["statistic"])
            assert value("retrigger_feature_drift_p_value", **labels) == result["p_value"]
            ratio = value("retrigger_feature_drift_effect_ratio", **labels)
            assert ratio == pytest.approx(result["effect_size"] / result["min_effect"])
            drifted = value("retrigger_feature_drifted", **labels)
            assert drifted == (1.0 if result["drifted"] else 0.0)
        assert value("retrigger_feature_drifted", product=product, feature="x", test="ks") == 1
        # a deleted product's gauges go with it (its counters stay: they only ever grow)
        assert (await admin.delete(f"/v1/products/{product}")).status_code == 204
        for feature, entry in features.items():
            labels = {"product": product, "feature": feature, "test": entry["test"]}
            assert value("retrigger_feature_drift_statistic", **labels) is None
            assert value("retrigger_feature_drift_p_value", **labels) is None
            assert value("retrigger_feature_drift_effect_ratio", **labels) is None
            assert value("retrigger_feature_drifted", **labels) is None

    async def test_budget_and_guard_suppressions(self, admin: httpx.AsyncClient) -> None:
        product = await setup_product(admin, [STALE], cooldown=None, max_runs=2, period="7d")
        trained = iso(datetime.now(UTC) - timedelta(days=5))
        reference = {"columns": columns(np.random.default_rng(1), 0.0, 50), "trained_at": trained}
        assert (await admin.post(f"/v1/products/{product}/references", json=reference)).is_success
        held = {"product": product, "guard": "max_runs"}
        suppressed = count("retrigger_guard_suppressions_total", **held)
        remaining = []
        for _ in range(3):
            await evaluate(admin, product)
            remaining.append(value("retrigger_budget_remaining", product=product))
        assert remaining == [1, 0, 0]
        assert count("retrigger_evaluations_total", product=product, outcome="suppressed") == 1
        assert count("retrigger_guard_suppressions_total", **held) == suppressed + 1
        policy = {"spec": {"rules": [STALE]}, "change_reason": "no budget"}
        assert (await admin.put(f"/v1/products/{product}/policy", json=policy)).is_success
        await evaluate(admin, product)
        assert value("retrigger_budget_remaining", product=product) is None


def drift_finding(features: dict[str, tuple[str, float | None, float | None]]) -> dict[str, Any]:
    return {
        "type": "data_drift",
        "details": {
            "features": {
                name: {"test": test, "result": {"statistic": stat, "p_value": p}}
                for name, (test, stat, p) in features.items()
            }
        },
    }


class TestGaugeSeries:
    def observe(self, product: str, findings: list[dict[str, Any]]) -> None:
        metrics.observe_evaluation(
            product=product,
            outcome="not_fired",
            trigger="api",
            seconds=0.1,
            suppressed_by=None,
            fired_rule_types=[],
            findings=findings,
            budget_remaining=None,
        )

    def test_series_of_features_no_longer_tested_are_dropped(self) -> None:
        product = unique("gauged")
        self.observe(product, [drift_finding({"a": ("ks", 0.3, 0.01), "b": ("psi", 0.2, None)})])
        a = {"product": product, "feature": "a", "test": "ks"}
        b = {"product": product, "feature": "b", "test": "psi"}
        assert value("retrigger_feature_drift_p_value", **a) == 0.01
        assert value("retrigger_feature_drift_statistic", **b) == 0.2
        assert value("retrigger_feature_drift_p_value", **b) is None  # distance-only test
        self.observe(product, [drift_finding({"a": ("ks", 0.1, 0.4), "b": ("none", None, None)})])
        assert value("retrigger_feature_drift_statistic", **a) == 0.1
        assert value("retrigger_feature_drift_statistic", **b) is None
        self.observe(product, [])
        assert not [s for s in series_with_label_value(product) if "drift" in s]

    def test_run_counts_cover_every_state(self) -> None:
        metrics.set_run_counts({"running": 2, "failed": 1}, oldest_active_seconds=42.0)
        states = {state: value("retrigger_runs", state=state) for state in metrics.RUN_STATES}
        assert states == {s: {"running": 2, "failed": 1}.get(s, 0) for s in metrics.RUN_STATES}
        assert value("retrigger_run_oldest_active_seconds") == 42.0

    def test_dispatch_attempts_and_errors(self) -> None:
        kind = unique("kind")
        metrics.observe_dispatch_attempt(kind, "retry", "timeout")
        metrics.observe_dispatch_attempt(kind, "submitted")
        metrics.observe_decision_to_submit(kind, 12.0)
        metrics.observe_run_transition(kind, "submitted")
        metrics.observe_submit_to_terminal(kind, "succeeded", 600.0)
        assert value("retrigger_dispatch_attempts_total", kind=kind, result="retry") == 1
        assert value("retrigger_dispatch_errors_total", kind=kind, error_class="timeout") == 1
        assert value("retrigger_decision_to_submit_seconds_sum", kind=kind) == 12.0
        assert value("retrigger_run_transitions_total", kind=kind, state="submitted") == 1
        terminal = {"kind": kind, "state": "succeeded"}
        assert value("retrigger_submit_to_terminal_seconds_count", **terminal) == 1


NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@asyncio_mark
class TestModelAge:
    async def test_scheduler_tick_refreshes_model_age(self, tmp_path: Path) -> None:
        settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'age.db'}")
        db = Database.from_settings(settings)
        await migrate.upgrade(db.engine)
        trained, untrained = unique("aged"), unique("unaged")
        async with db.session_scope() as session:
            team = Team(name="ml", description="")
            session.add(team)
            await session.flush()
            products = [
                Product(name=name, team_id=team.id, description="", tags=[], features=[])
                for name in (trained, untrained)
            ]
            session.add_all(products)
            await session.flush()
            await decision_service.note_model_trained(
                session, product_id=products[0].id, trained_at=NOW - timedelta(days=3)
            )
        try:
            await EvaluationScheduler(db, settings, now=lambda: NOW).tick()
        finally:
            await db.dispose()
        assert value("retrigger_model_age_seconds", product=trained) == 3 * 86_400
        assert value("retrigger_model_age_seconds", product=untrained) is None


MULTIPROCESS_WORKER = """
import os, sys
from retrigger import metrics
assert metrics.multiprocess_enabled()
metrics.observe_ingest("metrics", "mp", "accepted", int(sys.argv[1]))
metrics.set_model_ages({"mp": float(sys.argv[1])})
metrics.set_model_ages({})  # the product is gone: NaN, as series cannot be deleted
metrics.set_model_ages({"mp-kept": float(sys.argv[1])})
if sys.argv[2] == "exit":
    metrics.process_exiting()
print(os.getpid())
"""
MULTIPROCESS_SCRAPE = """
import asyncio, sys
import httpx
from retrigger.config import Settings
from retrigger.main import create_app

async def main():
    app = create_app(Settings(database_url="sqlite+aiosqlite:///" + sys.argv[1]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.get("/metrics")
    sys.stdout.write(response.text)

asyncio.run(main())
"""


def python(tmp_path: Path, script: str, *args: str) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")}
    out = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


class TestMultiprocess:
    def test_metrics_endpoint_merges_every_worker(self, tmp_path: Path) -> None:
        (tmp_path / "prom").mkdir()
        stayed = python(tmp_path, MULTIPROCESS_WORKER, "2", "stay").strip()
        exited = python(tmp_path, MULTIPROCESS_WORKER, "5", "exit").strip()
        text = python(tmp_path, MULTIPROCESS_SCRAPE, str(tmp_path / "scrape.db"))
        samples = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }
        ingested = ("retrigger_signals_ingested_total", (("kind", "metrics"),))
        key = (ingested[0], (*ingested[1], ("outcome", "accepted"), ("product", "mp")))
        assert samples[key] == 7  # counters add up over processes
        assert samples[("retrigger_model_age_seconds", (("product", "mp-kept"),))] == 5
        assert math.isnan(samples[("retrigger_model_age_seconds", (("product", "mp"),))])
        live = [path.stem.rsplit("_", 1)[-1] for path in (tmp_path / "prom").glob("*live*")]
        assert stayed in live
        assert exited not in live  # process_exiting() dropped its live gauges


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


class TestServe:
    @pytest.mark.usefixtures("restore_logging")
    def test_several_workers_get_a_fresh_multiprocess_directory(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import uvicorn

        from retrigger.cli import app

        seen: list[str | None] = []

        def fake_run(*args: Any, **kwargs: Any) -> None:
            directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
            seen.append(directory)
            assert directory is not None
            assert Path(directory).is_dir()
            assert kwargs["workers"] == 2

        assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
        monkeypatch.setattr(uvicorn, "run", fake_run)
        env = {"RETRIGGER_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}"}
        result = CliRunner().invoke(app, ["serve", "--workers", "2"], env=env)
        assert result.exit_code == 0, result.output
        assert len(seen) == 1
        assert seen[0] is not None
        assert not Path(seen[0]).exists()  # removed when the server stops
        assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ


@asyncio_mark
class TestEvaluationErrors:
    async def test_a_failing_api_evaluation_is_counted(
        self, admin: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        product = await setup_product(admin, [STALE], cooldown=None)

        async def broken(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("statistics blew up")

        before = count("retrigger_evaluation_errors_total", trigger="api")
        # a refusal is an answer, not an error
        r = await admin.post("/v1/products/no-such-product:evaluate", json={})
        assert r.status_code == 404
        assert count("retrigger_evaluation_errors_total", trigger="api") == before
        monkeypatch.setattr(decision_service, "evaluate_now", broken)
        r = await admin.post(f"/v1/products/{product}:evaluate", json={})
        assert r.status_code == 500
        assert r.headers["content-type"].startswith("application/problem+json")
        assert count("retrigger_evaluation_errors_total", trigger="api") == before + 1
