"""Backtests replay history as it was known at each step, on SQLite and PostgreSQL.

Signals go in through the API; the test then dates them with UPDATEs (``received_at``,
``joined_at``, ``activated_at``) as if they had arrived live at those times. A step must not see
what arrived after it, however old its event time, and must use the reference active then.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.decisions.inputs import build_inputs
from retrigger.decisions.state import StateView
from retrigger.policies.schemas import PolicyBody
from retrigger.products.models import Product
from retrigger.references import service as reference_service
from retrigger.references.models import Reference
from retrigger.signals.models import Alert, MetricPoint, Outcome, SampleBatch

pytestmark = pytest.mark.asyncio(loop_scope="session")

T0 = datetime(2025, 3, 3, tzinfo=UTC)
DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
NO_COOLDOWN = {"cooldown": None}


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


async def setup_product(
    admin: httpx.AsyncClient, session: AsyncSession, rules: list[dict[str, Any]]
) -> int:
    """Product ``p`` with one numeric feature ``x`` and a policy of ``rules``; its id."""
    r = await admin.post("/v1/teams", json={"name": "ml"})
    assert r.status_code in (201, 409), r.text
    features = [{"name": "x", "kind": "numeric"}]
    r = await admin.post("/v1/products", json={"name": "p", "team": "ml", "features": features})
    assert r.status_code == 201, r.text
    spec = {"rules": rules, "guards": NO_COOLDOWN}
    r = await admin.put("/v1/products/p/policy", json={"spec": spec, "change_reason": "test"})
    assert r.status_code == 200, r.text
    product_id = await session.scalar(select(Product.id).where(Product.name == "p"))
    assert product_id is not None
    return product_id


async def upload_reference(
    admin: httpx.AsyncClient,
    session: AsyncSession,
    product_id: int,
    *,
    activated_at: datetime,
    mean: float = 0.0,
    trained_at: datetime | None = None,
) -> int:
    """A reference of 2000 rows of N(mean, 1), activated (as if) at ``activated_at``."""
    values = np.random.default_rng(1).normal(mean, 1, 2000).tolist()
    body: dict[str, Any] = {"columns": {"x": values}}
    if trained_at is not None:
        body["trained_at"] = iso(trained_at)
    r = await admin.post("/v1/products/p/references", json=body)
    assert r.status_code == 201, r.text
    version = int(r.json()["version"])
    await session.execute(
        update(Reference)
        .where(Reference.product_id == product_id, Reference.version == version)
        .values(activated_at=activated_at)
    )
    return version


async def send_samples(
    admin: httpx.AsyncClient,
    session: AsyncSession,
    *,
    at: datetime,
    received_at: datetime | None = None,
    mean: float = 0.0,
    seed: int = 2,
) -> None:
    """1000 rows of N(mean, 1) with event time ``at``, received at ``received_at`` (default: at)."""
    values = np.random.default_rng(seed).normal(mean, 1, 1000).tolist()
    r = await admin.post(
        "/v1/products/p/signals/samples", json={"columns": {"x": values}, "time": iso(at)}
    )
    assert r.status_code == 200, r.text
    batch_id = r.json()["sample_batch_id"]
    await session.execute(
        update(SampleBatch).where(SampleBatch.id == batch_id).values(received_at=received_at or at)
    )


async def send_outcomes(
    admin: httpx.AsyncClient,
    session: AsyncSession,
    *,
    prefix: str,
    n: int,
    predicted_at: datetime,
    joined_at: datetime,
) -> None:
    """``n`` wrong predictions at ``predicted_at`` whose labels joined at ``joined_at``."""
    outcomes = [
        {
            "prediction_id": f"{prefix}{i}",
            "prediction": 1,
            "label": 0,
            "predicted_at": iso(predicted_at),
        }
        for i in range(n)
    ]
    r = await admin.post("/v1/products/p/signals/outcomes", json={"outcomes": outcomes})
    assert r.status_code == 200, r.text
    assert r.json()["joined"] == n
    await session.execute(
        update(Outcome)
        .where(Outcome.prediction_id.like(f"{prefix}%"))
        .values(received_at=predicted_at, labelled_at=joined_at, joined_at=joined_at)
    )


async def backtest(
    admin: httpx.AsyncClient,
    start: datetime,
    end: datetime,
    cadence: str = "1d",
    *,
    as_known: bool = True,
) -> list[dict[str, Any]]:
    body = {"start": iso(start), "end": iso(end), "cadence": cadence, "as_known": as_known}
    r = await admin.post("/v1/products/p/backtest", json=body)
    assert r.status_code == 200, r.text
    steps: list[dict[str, Any]] = r.json()["steps"]
    return steps


def outcomes_of(steps: list[dict[str, Any]]) -> list[str]:
    return [s["outcome"] for s in steps]


ACCURACY = {
    "id": "acc",
    "type": "performance",
    "metric": "accuracy",
    "threshold": 0.9,
    "min_samples": 10,
    "window": "7d",
}


class TestLabels:
    async def test_a_label_joined_after_the_step_counts_only_from_then(
        self, admin: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        await setup_product(admin, session, [ACCURACY])
        # predicted on day 0, labels (all wrong) joined on day 1 at noon
        await send_outcomes(
            admin,
            session,
            prefix="o",
            n=20,
            predicted_at=T0 + 6 * HOUR,
            joined_at=T0 + DAY + 12 * HOUR,
        )
        steps = await backtest(admin, T0 + DAY, T0 + 2 * DAY)
        assert outcomes_of(steps) == ["insufficient_data", "fired"], steps
        assert steps[1]["fired_rules"] == ["acc"]
        # by event time (the default, for backfilled history) the label counts at once
        steps = await backtest(admin, T0 + DAY, T0 + 2 * DAY, as_known=False)
        assert outcomes_of(steps)[0] == "fired", steps

    async def test_new_labelled_samples_count_as_labels_joined(
        self, admin: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        stale = {"id": "old", "type": "staleness", "max_age": "1d", "min_new_samples": 20}
        product_id = await setup_product(admin, session, [stale])
        await upload_reference(
            admin, session, product_id, activated_at=T0 - 10 * DAY, trained_at=T0 - 30 * DAY
        )
        await send_outcomes(
            admin,
            session,
            prefix="o",
            n=20,
            predicted_at=T0 + 6 * HOUR,
            joined_at=T0 + DAY + 12 * HOUR,
        )
        steps = await backtest(admin, T0 + DAY, T0 + 2 * DAY)
        # old enough at both steps; the 20 new labelled rows are only known at the second
        assert outcomes_of(steps) == ["not_fired", "fired"], steps

    async def test_detectors_are_fed_as_labels_join(
        self, admin: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        await setup_product(admin, session, [ACCURACY])
        # predicted on day 0, labelled late (day 2); predicted and labelled on day 1
        await send_outcomes(
            admin,
            session,
            prefix="late",
            n=10,
            predicted_at=T0 + HOUR,
            joined_at=T0 + 2 * DAY + 12 * HOUR,
        )
        await send_outcomes(
            admin,
            session,
            prefix="prompt",
            n=5,
            predicted_at=T0 + DAY + HOUR,
            joined_at=T0 + DAY + 2 * HOUR,
        )
        product = await session.scalar(select(Product).where(Product.name == "p"))
        assert product is not None
        policy = PolicyBody.model_validate({"rules": [{"id": "cd", "type": "concept_drift"}]})

        async def fed(since: datetime | None, now: datetime, as_known: bool = True) -> int:
            _, meta = await build_inputs(
                session,
                product=product,
                policy=policy,
                state=StateView(),
                now=now,
                replay_since=since,
                replay=True,
                as_known=as_known,
            )
            count: int = meta.windows["cd"]["new_errors"]
            return count

        # by prediction time, the first step would have consumed the 10 day-0 predictions
        assert await fed(None, T0 + DAY) == 0
        assert await fed(T0 + DAY, T0 + 2 * DAY) == 5
        assert await fed(T0 + 2 * DAY, T0 + 3 * DAY) == 10
        # by event time (the default replay): fed in prediction order, as far as joined now
        assert await fed(None, T0 + DAY, as_known=False) == 10


class TestLateSignals:
    async def test_a_late_metric_backfill_does_not_count_before_it_arrived(
        self, admin: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        latency = {
            "id": "lat",
            "type": "performance",
            "metric": "latency_ms",
            "direction": "lower_is_better",
            "threshold": 100,
            "min_samples": 1,
            "window": "7d",
        }
        product_id = await setup_product(admin, session, [latency])
        on_time = [{"name": "latency_ms", "value": 50, "time": iso(T0 + HOUR)}]
        backfill = [
            {"name": "latency_ms", "value": 500, "time": iso(T0 + h * HOUR)} for h in range(2, 7)
        ]
        for points in (on_time, backfill):
            r = await admin.post("/v1/products/p/signals/metrics", json={"points": points})
            assert r.status_code == 200, r.text
        dated = update(MetricPoint).where(MetricPoint.product_id == product_id)
        await session.execute(dated.values(received_at=MetricPoint.event_time))
        # the backfill of day 0 arrived on day 2 at noon
        await session.execute(
            dated.where(MetricPoint.value == 500).values(received_at=T0 + 2 * DAY + 12 * HOUR)
        )
        steps = await backtest(admin, T0 + DAY, T0 + 3 * DAY)
        assert outcomes_of(steps) == ["not_fired", "not_fired", "fired"], steps

    async def test_a_late_sample_batch_does_not_count_before_it_arrived(
        self, admin: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        drift = {"id": "drift", "type": "data_drift", "window": "7d"}
        product_id = await setup_product(admin, session, [drift])
        await upload_reference(admin, session, product_id, activated_at=T0 - DAY)
        await send_samples(admin, session, at=T0 + 12 * HOUR)
        late = T0 + 2 * DAY + 12 * HOUR
        await send_samples(admin, session, at=T0 + 18 * HOUR, received_at=late, mean=3.0, seed=3)
        steps = await backtest(admin, T0 + DAY, T0 + 3 * DAY)
        assert outcomes_of(steps) == ["not_fired", "not_fired", "fired"], steps


class TestReferenceAtTheStep:
    async def test_drift_is_judged_against_the_reference_active_then(
        self, admin: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        drift = {"id": "drift", "type": "data_drift", "window": "1d"}
        product_id = await setup_product(admin, session, [drift])
        first = await upload_reference(admin, session, product_id, activated_at=T0 - DAY)
        # the second baseline (shifted) replaced the first on day 2 at noon; it is today's
        second = await upload_reference(
            admin, session, product_id, activated_at=T0 + 2 * DAY + 12 * HOUR, mean=3.0
        )
        for day in range(4):
            await send_samples(admin, session, at=T0 + day * DAY + 12 * HOUR, seed=10 + day)
        history = await reference_service.activation_history(session, product_id=product_id)
        assert [r.version for r in history] == [first, second]
        assert reference_service.active_as_of(history, T0 - 2 * DAY) is None
        assert reference_service.active_as_of(history, T0 + 2 * DAY) is history[0]
        steps = await backtest(admin, T0 + DAY, T0 + 4 * DAY)
        # same distribution as the first baseline; far from the second once it is active
        assert outcomes_of(steps) == ["not_fired", "not_fired", "fired", "fired"], steps

    async def test_staleness_follows_the_reference_active_then(
        self, admin: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        stale = {"id": "old", "type": "staleness", "max_age": "10d"}
        product_id = await setup_product(admin, session, [stale])
        await upload_reference(
            admin, session, product_id, activated_at=T0 - DAY - 12 * HOUR, trained_at=T0 - 30 * DAY
        )
        # today's model (trained on day 1) only served from day 1 at noon
        await upload_reference(
            admin, session, product_id, activated_at=T0 + DAY + 12 * HOUR, trained_at=T0 + DAY
        )
        steps = await backtest(admin, T0 - 2 * DAY, T0 + 2 * DAY)
        assert outcomes_of(steps) == [
            "insufficient_data",  # no model known yet
            "fired",  # 29 days old
            "fired",
            "fired",  # the new model is trained but not yet serving
            "not_fired",  # the new model, 1 day old
        ], steps


class TestAlerts:
    async def test_a_resolution_delivered_after_the_step_does_not_hide_the_alert(
        self, admin: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        rule = {"id": "am", "type": "alert", "matchers": [{"name": "alertname", "value": "Drift"}]}
        product_id = await setup_product(admin, session, [rule])

        def state(status: str, ends_at: datetime | None, received_at: datetime) -> Alert:
            return Alert(
                product_id=product_id,
                fingerprint="f00d",
                status=status,
                starts_at=T0,
                ends_at=ends_at,
                labels={"alertname": "Drift"},
                annotations={},
                source="alertmanager",
                received_at=received_at,
            )

        # firing from day 0, delivered at 6:00; resolved on day 1 at noon, delivered on day 2
        session.add(state("firing", None, T0 + 6 * HOUR))
        session.add(state("resolved", T0 + DAY + 12 * HOUR, T0 + 2 * DAY + 12 * HOUR))
        await session.flush()
        steps = await backtest(admin, T0, T0 + 3 * DAY)
        assert outcomes_of(steps) == ["not_fired", "fired", "fired", "not_fired"], steps
