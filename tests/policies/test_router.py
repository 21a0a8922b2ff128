"""Policies over HTTP, on SQLite and PostgreSQL: versions, bounds, apply as code, conformance."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.auth.scopes import Scope
from retrigger.dispatch.models import Connection
from retrigger.policies import load_bundle
from tests.fixtures.factories import create_key, create_product, create_team

pytestmark = pytest.mark.asyncio(loop_scope="session")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"
REASON = "initial standard"

FRAUD_FEATURES = [{"name": n, "kind": "numeric"} for n in ("amount", "card_age_days")] + [
    {"name": "merchant_category", "kind": "categorical"},
    {"name": "country", "kind": "categorical"},
    {"name": "is_card_present", "kind": "boolean"},
]
SEARCH_FEATURES = [
    {"name": "query_length", "kind": "numeric"},
    {"name": "query_language", "kind": "categorical"},
    {"name": "device_type", "kind": "categorical"},
]


def example_documents() -> list[dict[str, Any]]:
    return [d.to_dict() for d in load_bundle(EXAMPLES).documents]


def template_spec(name: str = "tier-1-classifier") -> dict[str, Any]:
    for doc in example_documents():
        if doc["kind"] == "PolicyTemplate" and doc["name"] == name:
            return copy.deepcopy(doc["spec"])
    raise KeyError(name)


def locs(response: httpx.Response) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return [e["loc"] for e in response.json()["errors"]]


@pytest_asyncio.fixture(loop_scope="session", autouse=True)
async def connections(session: AsyncSession) -> None:
    """The org-wide connections the example policies launch on: a target must name one."""
    for name in ("airflow-prod", "argo-prod", "kubeflow-prod"):
        session.add(
            Connection(
                name=name,
                kind="fake",
                base_url="http://127.0.0.1:1",
                auth_type="none",
                timeout_seconds=10.0,
                options={},
            )
        )
    await session.flush()


@pytest_asyncio.fixture(loop_scope="session")
async def products(admin: httpx.AsyncClient) -> None:
    assert (await admin.post("/v1/teams", json={"name": "ml"})).status_code == 201
    for name, features in (
        ("fraud-scorer", FRAUD_FEATURES),
        ("churn-predictor", [{"name": "tenure", "kind": "numeric"}]),
        ("demand-forecast", [{"name": "price", "kind": "numeric"}]),
        ("search-ranking", SEARCH_FEATURES),
        ("no-policy-yet", []),
    ):
        r = await admin.post(
            "/v1/products", json={"name": name, "team": "ml", "features": features}
        )
        assert r.status_code == 201, r.text


async def save_template(admin: httpx.AsyncClient, spec: dict[str, Any]) -> httpx.Response:
    return await admin.put(
        "/v1/policy-templates/tier-1-classifier", json={"spec": spec, "change_reason": REASON}
    )


class TestTemplates:
    async def test_versions_are_immutable_and_unchanged_saves_create_none(
        self, admin: httpx.AsyncClient
    ) -> None:
        spec = template_spec()
        first = await save_template(admin, spec)
        assert first.json()["result"] == "created"
        assert first.json()["version"] == 1
        again = await save_template(admin, spec)
        assert again.json() == {"result": "unchanged", "version": 1, "changes": []}
        spec["guards"]["cooldown"] = "48h"
        second = await save_template(admin, spec)
        assert second.json()["result"] == "updated"
        assert second.json()["version"] == 2
        assert {
            "op": "change",
            "path": "guards.cooldown",
            "old": "1d",
            "new": "2d",
        } in second.json()["changes"]
        v1 = (await admin.get("/v1/policy-templates/tier-1-classifier/versions/1")).json()
        assert v1["spec"]["guards"]["cooldown"] == "1d"  # version 1 is untouched
        versions = (await admin.get("/v1/policy-templates/tier-1-classifier/versions")).json()
        assert [v["version"] for v in versions] == [2, 1]
        assert all(v["change_reason"] == REASON for v in versions)
        d = await admin.get(
            "/v1/policy-templates/tier-1-classifier/diff", params={"from": 1, "to": 2}
        )
        assert [c["path"] for c in d.json()["changes"]] == ["guards.cooldown"]

    async def test_team_keys_cannot_change_templates(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        team = await create_team(session)
        token = await create_key(session, scopes=[Scope.admin], team=team)
        r = await client.put(
            "/v1/policy-templates/tier-1-classifier",
            json={"spec": template_spec(), "change_reason": REASON},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 403

    @pytest.mark.parametrize(
        ("mutate", "expected"),
        [
            (lambda s: s["rules"].append({"id": "x", "type": "vibes"}), ["rules", 5, "type"]),
            (lambda s: s["rules"][1].update(test="magic"), ["rules", 1, "test"]),
            (lambda s: s["rules"][1].update(alpha=1.5), ["rules", 1, "alpha"]),
            (
                lambda s: s["rules"].append(
                    {"id": "nightly", "type": "schedule", "cron": "61 * * * *"}
                ),
                ["rules", 5, "cron"],
            ),
            (
                lambda s: s["rules"].append(
                    {"id": "nightly", "type": "schedule", "cron": "@daily", "timezone": "Mars/Base"}
                ),
                ["rules", 5, "timezone"],
            ),
            (lambda s: s["rules"][2]["params"].update(delta=2), ["rules", 2, "params", "delta"]),
        ],
    )
    async def test_bad_template_is_422_naming_the_path(
        self, admin: httpx.AsyncClient, mutate: Any, expected: list[Any]
    ) -> None:
        spec = template_spec()
        mutate(spec)
        found = locs(await save_template(admin, spec))
        assert ["body", "spec", *expected] in found, found
        assert (await admin.get("/v1/policy-templates/tier-1-classifier")).status_code == 404


class TestProductPolicies:
    async def _template(self, admin: httpx.AsyncClient) -> None:
        assert (await save_template(admin, template_spec())).status_code == 200

    async def test_override_within_bounds_and_provenance(
        self, admin: httpx.AsyncClient, products: None
    ) -> None:
        await self._template(admin)
        spec = {
            "template": "tier-1-classifier@1",
            "overrides": {"rules": {"staleness": {"max_age": "45d"}}},
        }
        r = await admin.put(
            "/v1/products/churn-predictor/policy", json={"spec": spec, "change_reason": REASON}
        )
        assert r.status_code == 200, r.text
        got = (await admin.get("/v1/products/churn-predictor/policy")).json()
        assert got["template"] == "tier-1-classifier@1"
        assert got["version"] == 1
        provenance = got["effective"]["provenance"]
        assert provenance["rules[staleness].max_age"] == "override"
        assert provenance["rules[feature-drift].alpha"].startswith("template:tier-1-classifier@1")
        rules = {r["id"]: r for r in got["effective"]["policy"]["rules"]}
        assert rules["staleness"]["max_age"] == "45d"

    async def test_override_beyond_template_bound_is_422_naming_bound(
        self, admin: httpx.AsyncClient, products: None
    ) -> None:
        await self._template(admin)
        spec = {
            "template": "tier-1-classifier@1",
            "overrides": {"rules": {"staleness": {"max_age": "120d"}}},
        }
        r = await admin.put(
            "/v1/products/churn-predictor/policy", json={"spec": spec, "change_reason": REASON}
        )
        assert ["body", "spec", "overrides", "rules", "staleness", "max_age"] in locs(r)
        assert "60d" in r.text
        assert (await admin.get("/v1/products/churn-predictor/policy")).status_code == 404

    async def test_unknown_template_and_unknown_feature(
        self, admin: httpx.AsyncClient, products: None
    ) -> None:
        await self._template(admin)
        r = await admin.put(
            "/v1/products/churn-predictor/policy",
            json={"spec": {"template": "tier-9@1"}, "change_reason": REASON},
        )
        assert ["body", "spec", "template"] in locs(r)
        standalone = {
            "rules": [{"id": "d", "type": "data_drift", "features": ["nope"], "test": "ks"}]
        }
        r = await admin.put(
            "/v1/products/churn-predictor/policy",
            json={"spec": standalone, "change_reason": REASON},
        )
        assert any("nope" in e["msg"] for e in r.json()["errors"]), r.text
        assert r.status_code == 422

    async def test_versions_and_diff(self, admin: httpx.AsyncClient, products: None) -> None:
        await self._template(admin)
        url = "/v1/products/churn-predictor/policy"
        for max_age in ("30d", "45d", "45d"):
            spec = {
                "template": "tier-1-classifier@1",
                "overrides": {"rules": {"staleness": {"max_age": max_age}}},
            }
            await admin.put(url, json={"spec": spec, "change_reason": REASON})
        versions = (await admin.get(url + "/versions")).json()
        assert [v["version"] for v in versions] == [2, 1]
        d = (await admin.get(url + "/diff", params={"from": 1, "to": 2})).json()
        assert d["changes"] == [
            {
                "op": "change",
                "path": "overrides.rules.staleness.max_age",
                "old": "30d",
                "new": "45d",
            }
        ]
        eff = (
            await admin.get(url + "/diff", params={"from": 1, "to": 2, "effective": True})
        ).json()
        assert [c["path"] for c in eff["changes"]] == ["rules[staleness].max_age"]

    async def test_other_teams_product_policy_is_404(
        self, admin: httpx.AsyncClient, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        other = await create_team(session)
        await create_product(session, team=other, name="secret-model")
        mine = await create_team(session)
        token = await create_key(session, scopes=[Scope.write], team=mine)
        r = await client.get(
            "/v1/products/secret-model/policy", headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 404


class TestApply:
    async def test_examples_apply_then_reapply_changes_nothing(
        self, admin: httpx.AsyncClient, products: None
    ) -> None:
        body = {"documents": example_documents(), "change_reason": REASON}
        first = await admin.post("/v1/policies:apply", json=body)
        assert first.status_code == 200, first.text
        actions = {(i["kind"], i["name"]): i["action"] for i in first.json()["items"]}
        assert set(actions.values()) == {"create"}
        assert ("ProductPolicy", "fraud-scorer") in actions
        audit_before = (await admin.get("/v1/audit", params={"limit": 500})).json()["items"]

        second = await admin.post("/v1/policies:apply", json=body)
        assert {i["action"] for i in second.json()["items"]} == {"unchanged"}
        audit_after = (await admin.get("/v1/audit", params={"limit": 500})).json()["items"]
        assert len(audit_after) == len(audit_before)
        versions = (await admin.get("/v1/products/fraud-scorer/policy/versions")).json()
        assert len(versions) == 1

    async def test_dry_run_plans_without_writing(
        self, admin: httpx.AsyncClient, products: None
    ) -> None:
        body = {"documents": example_documents(), "change_reason": REASON}
        r = await admin.post("/v1/policies:apply", params={"dry_run": True}, json=body)
        assert r.status_code == 200
        assert r.json()["applied"] is False
        assert all(i["action"] == "create" for i in r.json()["items"])
        assert (await admin.get("/v1/policy-templates")).json() == []

    async def test_one_bad_document_applies_nothing(
        self, admin: httpx.AsyncClient, products: None
    ) -> None:
        documents = example_documents()
        bad = next(i for i, d in enumerate(documents) if d["name"] == "demand-forecast")
        documents[bad]["spec"]["overrides"]["rules"]["staleness"]["max_age"] = "365d"
        r = await admin.post(
            "/v1/policies:apply", json={"documents": documents, "change_reason": REASON}
        )
        found = locs(r)
        assert any(loc[:4] == ["body", "documents", bad, "spec"] for loc in found), found
        assert (await admin.get("/v1/policy-templates")).json() == []
        assert (await admin.get("/v1/products/fraud-scorer/policy")).status_code == 404

    async def test_unknown_product_and_duplicates_are_named(
        self, admin: httpx.AsyncClient, products: None
    ) -> None:
        documents = example_documents()
        product_doc = next(d for d in documents if d["kind"] == "ProductPolicy")
        ghost = {**copy.deepcopy(product_doc), "name": "ghost-model"}
        found = locs(
            await admin.post(
                "/v1/policies:apply",
                json={"documents": [*documents, ghost, documents[0]], "change_reason": REASON},
            )
        )
        n = len(documents)
        assert ["body", "documents", n, "name"] in found
        assert ["body", "documents", n + 1, "name"] in found


class TestConformance:
    async def test_report_shows_who_deviates(
        self, admin: httpx.AsyncClient, products: None
    ) -> None:
        body = {"documents": example_documents(), "change_reason": REASON}
        assert (await admin.post("/v1/policies:apply", json=body)).status_code == 200
        spec = template_spec()
        spec["guards"]["cooldown"] = "36h"
        assert (await save_template(admin, spec)).json()["version"] == 2
        report = (await admin.get("/v1/policies:conformance")).json()
        rows = {r["product"]: r for r in report["products"]}
        assert rows["fraud-scorer"]["status"] == "behind"
        assert rows["fraud-scorer"]["versions_behind"] == 1
        assert rows["fraud-scorer"]["extra_rules"] == ["fraud-rate-spike"]
        assert rows["fraud-scorer"]["disabled_rules"] == ["error-stream"]
        assert "staleness" in rows["fraud-scorer"]["overrides"]["rules"]
        assert rows["demand-forecast"]["status"] == "on_latest"
        assert rows["search-ranking"]["status"] == "standalone"
        assert rows["no-policy-yet"]["status"] == "no_policy"
        assert report["summary"]["behind"] == 2  # fraud-scorer and churn-predictor
