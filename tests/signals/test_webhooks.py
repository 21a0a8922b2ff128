"""Alert webhooks: real Alertmanager 0.25 payloads, Grafana's shape, dedupe, unknown products."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.auth.scopes import Scope
from retrigger.signals import readers
from retrigger.signals.models import Alert
from tests.fixtures.factories import create_key, create_product, create_team
from tests.signals.conftest import bearer, count

pytestmark = pytest.mark.asyncio(loop_scope="session")

FIXTURES = Path(__file__).parent / "fixtures"
AM = "/v1/webhooks/alertmanager?product_label=model_name"
STARTS = datetime(2026, 11, 28, 20, 19, 19, 249000, tzinfo=UTC)
ENDS = datetime(2026, 11, 28, 20, 19, 22, 249000, tzinfo=UTC)


def load(name: str) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return payload


FIRING = load("alertmanager-payload.json")
RESOLVED = load("alertmanager-payload-resolved.json")
GRAFANA = load("grafana-payload.json")


@pytest_asyncio.fixture(loop_scope="session")
async def churn(session: AsyncSession) -> tuple[int, dict[str, str]]:
    """The ``churn-model`` product and an ingest key of its team."""
    team = await create_team(session)
    product = await create_product(session, team=team, name="churn-model")
    token = await create_key(session, scopes=[Scope.ingest], team=team)
    return product.id, bearer(token)


class TestAlertmanager:
    async def test_firing_then_resolved(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        churn: tuple[int, dict[str, str]],
    ) -> None:
        product_id, auth = churn
        r = await client.post(AM, json=FIRING, headers=auth)
        assert r.status_code == 200, r.text
        assert r.json() == {
            "received": 1,
            "accepted": 1,
            "duplicates": 0,
            "ignored": 0,
            "ignored_products": [],
        }
        active = await readers.active_alerts(session, product_id=product_id, at=ENDS)
        assert [(a.fingerprint, a.status, a.starts_at, a.ends_at) for a in active] == [
            ("f441e21660689fb2", "firing", STARTS, None)
        ]
        alert = active[0]
        assert alert.labels["alertname"] == "ModelDriftHigh"
        assert alert.annotations["summary"] == "Drift 0.93 on churn-model"
        assert alert.source == "alertmanager"
        assert alert.group_key == FIRING["groupKey"]
        assert alert.generator_url == FIRING["alerts"][0]["generatorURL"]

        r = await client.post(AM, json=RESOLVED, headers=auth)
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == 1
        assert await readers.active_alerts(session, product_id=product_id, at=ENDS) == []
        # replaying history: between start and end the alert was firing
        during = datetime(2026, 11, 28, 20, 19, 20, tzinfo=UTC)
        assert len(await readers.active_alerts(session, product_id=product_id, at=during)) == 1
        before = datetime(2026, 11, 28, 20, 0, tzinfo=UTC)
        assert await readers.active_alerts(session, product_id=product_id, at=before) == []

    async def test_redelivery_is_deduplicated(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        churn: tuple[int, dict[str, str]],
    ) -> None:
        product_id, auth = churn
        assert (await client.post(AM, json=FIRING, headers=auth)).json()["accepted"] == 1
        again = await client.post(AM, json=FIRING, headers=auth)
        assert again.status_code == 200
        assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 1)
        assert await count(session, Alert, product_id=product_id) == 1

    async def test_resolved_before_firing_stays_resolved(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        churn: tuple[int, dict[str, str]],
    ) -> None:
        product_id, auth = churn
        await client.post(AM, json=RESOLVED, headers=auth)
        await client.post(AM, json=FIRING, headers=auth)  # a late retry of the firing state
        assert await readers.active_alerts(session, product_id=product_id, at=ENDS) == []

    async def test_unknown_product_is_ignored_not_an_error(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        token = await create_key(session, scopes=[Scope.ingest])
        r = await client.post(AM, json=FIRING, headers=bearer(token))
        assert r.status_code == 200
        assert r.json()["ignored"] == 1
        assert r.json()["ignored_products"] == ["churn-model"]
        assert await count(session, Alert) == 0

    async def test_default_product_label_is_product(
        self,
        client: httpx.AsyncClient,
        churn: tuple[int, dict[str, str]],
    ) -> None:
        _, auth = churn
        r = await client.post("/v1/webhooks/alertmanager", json=FIRING, headers=auth)
        assert r.status_code == 200
        assert r.json()["ignored"] == 1  # the fixture names the product in model_name

    async def test_product_label_setting(
        self,
        app: FastAPI,
        client: httpx.AsyncClient,
        churn: tuple[int, dict[str, str]],
    ) -> None:
        _, auth = churn
        app.state.settings = app.state.settings.model_copy(
            update={"alert_product_label": "model_name"}
        )
        r = await client.post("/v1/webhooks/alertmanager", json=FIRING, headers=auth)
        assert r.json()["accepted"] == 1

    async def test_other_teams_product_is_ignored(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        churn: tuple[int, dict[str, str]],
    ) -> None:
        token = await create_key(session, scopes=[Scope.ingest], team=await create_team(session))
        r = await client.post(AM, json=FIRING, headers=bearer(token))
        assert r.status_code == 200
        assert r.json()["ignored"] == 1
        assert await count(session, Alert, product_id=churn[0]) == 0

    @pytest.mark.parametrize(
        "mutate",
        [
            lambda p: p.pop("alerts"),
            lambda p: p["alerts"][0].update(status="pending"),
            lambda p: p["alerts"][0].update(startsAt="yesterday"),
            lambda p: p.update(version="3"),
        ],
    )
    async def test_malformed_payload_is_422(
        self,
        client: httpx.AsyncClient,
        churn: tuple[int, dict[str, str]],
        mutate: Any,
    ) -> None:
        payload = json.loads(json.dumps(FIRING))
        mutate(payload)
        r = await client.post(AM, json=payload, headers=churn[1])
        assert r.status_code == 422

    async def test_unknown_fields_are_accepted(
        self, client: httpx.AsyncClient, churn: tuple[int, dict[str, str]]
    ) -> None:
        payload = json.loads(json.dumps(FIRING))
        payload["somethingNew"] = {"x": 1}
        payload["alerts"][0]["alsoNew"] = True
        r = await client.post(AM, json=payload, headers=churn[1])
        assert r.status_code == 200

    async def test_read_key_is_403(self, client: httpx.AsyncClient, session: AsyncSession) -> None:
        token = await create_key(session, scopes=[Scope.read])
        r = await client.post(AM, json=FIRING, headers=bearer(token))
        assert r.status_code == 403


class TestGrafana:
    async def test_grafana_payload(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        churn: tuple[int, dict[str, str]],
    ) -> None:
        product_id, auth = churn
        r = await client.post("/v1/webhooks/grafana", json=GRAFANA, headers=auth)
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == 1
        assert r.json()["ignored_products"] == ["some-other-model"]
        now = datetime(2026, 11, 28, 21, 0, tzinfo=UTC)
        (alert,) = await readers.active_alerts(session, product_id=product_id, at=now)
        assert alert.source == "grafana"
        assert alert.starts_at == datetime(2026, 11, 28, 20, 10, 0, 125000, tzinfo=UTC)

    async def test_missing_fingerprint_is_derived_from_labels(
        self,
        client: httpx.AsyncClient,
        session: AsyncSession,
        churn: tuple[int, dict[str, str]],
    ) -> None:
        payload = json.loads(json.dumps(GRAFANA))
        for alert in payload["alerts"]:
            del alert["fingerprint"]
        await client.post("/v1/webhooks/grafana", json=payload, headers=churn[1])
        r = await client.post("/v1/webhooks/grafana", json=payload, headers=churn[1])
        assert r.json()["duplicates"] == 1
        assert await count(session, Alert, product_id=churn[0]) == 1
