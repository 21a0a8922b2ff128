"""Signals in, decisions out, through the HTTP API on SQLite and PostgreSQL.

Each rule type fires and does not fire on constructed data; guards suppress with their reason;
a backtest over a synthetic month finds exactly the known drift point.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")

FIXTURES = Path(__file__).resolve().parents[1] / "signals" / "fixtures"
FEATURES = [
    {"name": "x", "kind": "numeric"},
    {"name": "y", "kind": "numeric"},
    {"name": "c", "kind": "categorical"},
]


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


async def setup_product(admin: httpx.AsyncClient, rules: list[dict[str, Any]], **spec: Any) -> str:
    r = await admin.post("/v1/teams", json={"name": "ml"})
    assert r.status_code in (201, 409)
    r = await admin.post("/v1/products", json={"name": "p", "team": "ml", "features": FEATURES})
    assert r.status_code == 201, r.text
    body = {"spec": {"rules": rules, **spec}, "change_reason": "test policy"}
    r = await admin.put("/v1/products/p/policy", json=body)
    assert r.status_code == 200, r.text
    return "p"


async def upload_reference(admin: httpx.AsyncClient, **extra: Any) -> None:
    rng = np.random.default_rng(1)
    columns = {
        "x": rng.normal(0, 1, 2000).tolist(),
        "y": rng.normal(5, 2, 2000).tolist(),
        "c": rng.choice(["a", "b", "c"], 2000, p=[0.5, 0.3, 0.2]).tolist(),
    }
    r = await admin.post("/v1/products/p/references", json={"columns": columns, **extra})
    assert r.status_code == 201, r.text


async def send_samples(
    admin: httpx.AsyncClient, shift: float, *, at: datetime | None = None, seed: int = 2
) -> None:
    rng = np.random.default_rng(seed)
    columns = {
        "x": rng.normal(shift, 1, 1000).tolist(),
        "y": rng.normal(5 + 2 * shift, 2, 1000).tolist(),
        "c": rng.choice(["a", "b", "c"], 1000, p=[0.5, 0.3, 0.2]).tolist(),
    }
    body: dict[str, Any] = {"columns": columns}
    if at is not None:
        body["time"] = iso(at)
    r = await admin.post("/v1/products/p/signals/samples", json=body)
    assert r.status_code in (200, 201), r.text


async def send_outcomes(admin: httpx.AsyncClient, errors: list[int], prefix: str = "o") -> None:
    outcomes = [
        {"prediction_id": f"{prefix}{i}", "prediction": 1, "label": 0 if e else 1}
        for i, e in enumerate(errors)
    ]
    for start in range(0, len(outcomes), 5000):
        r = await admin.post(
            "/v1/products/p/signals/outcomes", json={"outcomes": outcomes[start : start + 5000]}
        )
        assert r.status_code in (200, 201), r.text


async def evaluate(admin: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    r = await admin.post("/v1/products/p:evaluate", json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


DRIFT = {"id": "drift", "type": "data_drift", "window": "1d", "drift_share": 0.5}


class TestDataDrift:
    async def test_fires_on_shift_not_on_same_distribution(self, admin: httpx.AsyncClient) -> None:
        await setup_product(admin, [DRIFT], guards={"cooldown": None})
        await upload_reference(admin)
        await send_samples(admin, shift=0.0)
        quiet = await evaluate(admin)
        assert quiet["outcome"] == "not_fired", quiet["reason"]
        assert quiet["reference_version"] == 1
        finding = quiet["findings"][0]
        assert set(finding["details"]["features"]) == {"x", "y", "c"}
        await send_samples(admin, shift=1.0, seed=3)
        loud = await evaluate(admin)
        assert loud["outcome"] == "fired", loud["reason"]
        assert loud["fired_rules"] == ["drift"]
        stored = (await admin.get(f"/v1/decisions/{loud['id']}")).json()
        assert stored["findings"] == loud["findings"]
        assert stored["inputs"]["windows"]["drift"]["n_rows"] == 2000

    async def test_insufficient_without_reference_or_samples(
        self, admin: httpx.AsyncClient
    ) -> None:
        await setup_product(admin, [DRIFT])
        decision = await evaluate(admin)
        assert decision["outcome"] == "insufficient_data"

    async def test_candidate_policy_dry_run_stores_nothing(self, admin: httpx.AsyncClient) -> None:
        await setup_product(admin, [DRIFT])
        await upload_reference(admin)
        await send_samples(admin, shift=1.0)
        candidate = {"rules": [{**DRIFT, "drift_share": 1.0, "features": ["c"]}]}
        dry = await evaluate(admin, policy=candidate)
        assert dry["dry_run"] is True
        assert dry["id"] is None
        assert dry["outcome"] == "not_fired"  # c did not move
        listed = (await admin.get("/v1/decisions", params={"product": "p"})).json()
        assert listed["items"] == []


class TestPerformance:
    RULE = {
        "id": "acc",
        "type": "performance",
        "metric": "accuracy",
        "threshold": 0.8,
        "window": "last:1000",
        "min_samples": 200,
    }

    async def test_absolute_threshold(self, admin: httpx.AsyncClient) -> None:
        await setup_product(admin, [self.RULE], guards={"cooldown": None})
        rng = np.random.default_rng(4)
        await send_outcomes(admin, (rng.random(500) < 0.1).astype(int).tolist(), "good")
        good = await evaluate(admin)
        assert good["outcome"] == "not_fired", good["reason"]
        await send_outcomes(admin, (rng.random(1000) < 0.4).astype(int).tolist(), "bad")
        bad = await evaluate(admin)
        assert bad["outcome"] == "fired", bad["reason"]
        assert "accuracy" in bad["findings"][0]["summary"]

    async def test_relative_to_reference_baseline_and_late_labels(
        self, admin: httpx.AsyncClient
    ) -> None:
        rule = {**self.RULE, "threshold": None, "relative_threshold": 0.05}
        await setup_product(admin, [rule])
        await upload_reference(admin, baseline_metrics={"accuracy": 0.95})
        # predictions first, labels a "day" later
        preds = [{"prediction_id": f"q{i}", "prediction": 1} for i in range(400)]
        r = await admin.post("/v1/products/p/signals/outcomes", json={"outcomes": preds})
        assert r.status_code in (200, 201)
        assert (await evaluate(admin))["outcome"] == "insufficient_data"
        labels = [{"prediction_id": f"q{i}", "label": 1 if i % 5 else 0} for i in range(400)]
        r = await admin.post("/v1/products/p/signals/outcomes", json={"outcomes": labels})
        assert r.json()["updated"] == 400
        late = await evaluate(admin)
        assert late["outcome"] == "fired", late["reason"]  # 0.80 is > 5% below 0.95


class TestConceptDrift:
    async def test_adwin_on_error_stream_consumes_each_outcome_once(
        self, admin: httpx.AsyncClient
    ) -> None:
        rule = {"id": "errors", "type": "concept_drift", "detector": "adwin"}
        await setup_product(admin, [rule], guards={"cooldown": None})
        rng = np.random.default_rng(5)
        await send_outcomes(admin, (rng.random(2000) < 0.1).astype(int).tolist(), "a")
        first = await evaluate(admin)
        assert first["outcome"] == "not_fired"
        assert first["inputs"]["outcomes_consumed_by_detectors"] == 2000
        again = await evaluate(admin)
        assert again["inputs"]["outcomes_consumed_by_detectors"] == 0
        await send_outcomes(admin, (rng.random(2000) < 0.5).astype(int).tolist(), "b")
        drifted = await evaluate(admin)
        assert drifted["outcome"] == "fired", drifted["reason"]
        assert drifted["inputs"]["outcomes_consumed_by_detectors"] == 2000


class TestStalenessAndSchedule:
    async def test_staleness_from_reference_training_time(self, admin: httpx.AsyncClient) -> None:
        rule = {"id": "age", "type": "staleness", "max_age": "30d"}
        await setup_product(admin, [rule])
        await upload_reference(admin, trained_at=iso(now() - timedelta(days=10)))
        assert (await evaluate(admin))["outcome"] == "not_fired"
        await upload_reference(admin, trained_at=iso(now() - timedelta(days=45)))
        old = await evaluate(admin)
        assert old["outcome"] == "fired", old["reason"]

    async def test_schedule_fires_after_a_cron_time_passes(self, admin: httpx.AsyncClient) -> None:
        rule = {"id": "nightly", "type": "schedule", "cron": "0 3 * * *", "timezone": "UTC"}
        await setup_product(admin, [rule])
        first = await evaluate(admin)
        assert first["outcome"] == "not_fired"  # first evaluation only marks the time
        later = await evaluate(admin, dry_run=True, at=iso(now() + timedelta(days=1, hours=1)))
        assert later["outcome"] == "fired", later["reason"]


class TestAlerts:
    async def test_alertmanager_firing_then_resolved(self, admin: httpx.AsyncClient) -> None:
        rule = {
            "id": "quality",
            "type": "alert",
            "matchers": [{"name": "alertname", "op": "=~", "value": ".+"}],
        }
        await setup_product(admin, [rule], guards={"cooldown": None})
        firing = json.loads((FIXTURES / "alertmanager-payload.json").read_text())
        for alert in firing["alerts"]:
            alert["labels"]["model_name"] = "p"
        r = await admin.post(
            "/v1/webhooks/alertmanager", params={"product_label": "model_name"}, json=firing
        )
        assert r.status_code == 200, r.text
        fired = await evaluate(admin)
        assert fired["outcome"] == "fired", fired["reason"]
        resolved = json.loads((FIXTURES / "alertmanager-payload-resolved.json").read_text())
        for alert in resolved["alerts"]:
            alert["labels"]["model_name"] = "p"
        r = await admin.post(
            "/v1/webhooks/alertmanager", params={"product_label": "model_name"}, json=resolved
        )
        assert r.status_code == 200
        assert (await evaluate(admin))["outcome"] == "not_fired"


ALWAYS = {"id": "tick", "type": "staleness", "max_age": "1d"}


class TestGuards:
    async def _stale(self, admin: httpx.AsyncClient, **guards: Any) -> None:
        await setup_product(admin, [ALWAYS], guards=guards)
        await upload_reference(admin, trained_at=iso(now() - timedelta(days=5)))

    async def test_cooldown(self, admin: httpx.AsyncClient) -> None:
        await self._stale(admin, cooldown="1d")
        assert (await evaluate(admin))["outcome"] == "fired"
        second = await evaluate(admin)
        assert second["outcome"] == "suppressed"
        assert second["suppressed_by"] == "cooldown"
        assert "cooldown" in second["reason"]

    async def test_max_runs(self, admin: httpx.AsyncClient) -> None:
        await self._stale(admin, cooldown=None, max_runs=2, period="7d")
        outcomes = [(await evaluate(admin))["outcome"] for _ in range(3)]
        assert outcomes == ["fired", "fired", "suppressed"]
        listed = await admin.get("/v1/decisions", params={"outcome": "suppressed"})
        assert [d["suppressed_by"] for d in listed.json()["items"]] == ["max_runs"]

    async def test_shadow_mode(self, admin: httpx.AsyncClient) -> None:
        await self._stale(admin, mode="shadow")
        decision = await evaluate(admin)
        assert decision["outcome"] == "suppressed"
        assert decision["suppressed_by"] == "shadow_mode"

    async def test_silence(self, admin: httpx.AsyncClient) -> None:
        silence = {
            "start": iso(now() - timedelta(hours=1)),
            "end": iso(now() + timedelta(hours=1)),
            "reason": "warehouse migration",
        }
        await self._stale(admin, silences=[silence])
        decision = await evaluate(admin)
        assert decision["suppressed_by"] == "silence"
        assert "warehouse migration" in decision["reason"]

    async def test_require_approval_is_recorded(self, admin: httpx.AsyncClient) -> None:
        await self._stale(admin, require_approval=True)
        decision = await evaluate(admin)
        assert decision["outcome"] == "fired"
        assert decision["requires_approval"] is True


class TestDecisionsApi:
    async def test_filters_and_other_teams(self, admin: httpx.AsyncClient) -> None:
        await setup_product(admin, [ALWAYS], guards={"cooldown": None})
        await upload_reference(admin, trained_at=iso(now() - timedelta(days=5)))
        await evaluate(admin)
        by_type = await admin.get("/v1/decisions", params={"rule_type": "staleness"})
        assert len(by_type.json()["items"]) == 1
        none = await admin.get("/v1/decisions", params={"rule_type": "alert"})
        assert none.json()["items"] == []
        assert (await admin.get("/v1/decisions/999999")).status_code == 404

    async def test_at_needs_a_dry_run(self, admin: httpx.AsyncClient) -> None:
        await setup_product(admin, [ALWAYS])
        r = await admin.post("/v1/products/p:evaluate", json={"at": iso(now())})
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["body", "at"]

    async def test_candidate_policy_errors_name_the_path(self, admin: httpx.AsyncClient) -> None:
        await setup_product(admin, [ALWAYS])
        candidate = {"rules": [{"id": "x", "type": "data_drift", "alpha": 2}]}
        r = await admin.post("/v1/products/p:evaluate", json={"policy": candidate})
        assert r.status_code == 422
        assert ["body", "policy", "rules", 0, "alpha"] in [e["loc"] for e in r.json()["errors"]]

    async def test_no_policy_is_409(self, admin: httpx.AsyncClient) -> None:
        await admin.post("/v1/teams", json={"name": "ml"})
        await admin.post("/v1/products", json={"name": "bare", "team": "ml"})
        r = await admin.post("/v1/products/bare:evaluate", json={})
        assert r.status_code == 409


class TestBacktest:
    async def test_synthetic_month_with_known_drift_point(self, admin: httpx.AsyncClient) -> None:
        await setup_product(admin, [DRIFT], guards={"cooldown": "30d"})
        await upload_reference(admin)
        start = now().replace(hour=0, minute=0, second=0) - timedelta(days=30)
        for day in range(30):
            shift = 1.0 if day >= 20 else 0.0
            await send_samples(admin, shift, at=start + timedelta(days=day, hours=12), seed=day)
        r = await admin.post(
            "/v1/products/p/backtest",
            json={
                "start": iso(start + timedelta(days=1)),
                "end": iso(start + timedelta(days=30)),
                "cadence": "1d",
            },
        )
        assert r.status_code == 200, r.text
        result = r.json()
        expected = start + timedelta(days=21)  # the first step whose 1d window holds day 20
        assert result["retrains"] == 1
        assert [datetime.fromisoformat(t) for t in result["retrain_times"]] == [expected]
        assert result["outcomes"]["suppressed"] == 9  # days 22..30: drift holds, cooldown holds
        assert result["actual"]["decisions"] == 0
