"""``retrigger policy apply|diff|export`` against a real server process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

from tests.fixtures.server import LiveServer

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "policies"


def cli(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETRIGGER_")}
    env.update(RETRIGGER_URL=server.url, RETRIGGER_TOKEN=server.token)
    return subprocess.run(
        [sys.executable, "-m", "retrigger", "policy", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def seed_products(server: LiveServer) -> None:
    headers = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(base_url=server.url, headers=headers) as http:
        assert http.post("/v1/teams", json={"name": "ml"}).status_code == 201
        features = {
            "fraud-scorer": [
                {"name": "amount", "kind": "numeric"},
                {"name": "card_age_days", "kind": "numeric"},
                {"name": "merchant_category", "kind": "categorical"},
                {"name": "country", "kind": "categorical"},
                {"name": "is_card_present", "kind": "boolean"},
            ],
            "churn-predictor": [{"name": "tenure", "kind": "numeric"}],
            "demand-forecast": [{"name": "price", "kind": "numeric"}],
            "search-ranking": [
                {"name": "query_length", "kind": "numeric"},
                {"name": "query_language", "kind": "categorical"},
                {"name": "device_type", "kind": "categorical"},
            ],
        }
        for name in ("fraud-scorer", "churn-predictor", "demand-forecast", "search-ranking"):
            body = {"name": name, "team": "ml", "features": features.get(name, [])}
            assert http.post("/v1/products", json=body).status_code == 201
        # the connections the example policies launch on: a target must name one
        for name in ("airflow-prod", "argo-prod", "kubeflow-prod"):
            body = {"name": name, "kind": "fake", "base_url": "http://127.0.0.1:1"}
            assert http.post("/v1/connections", json=body).status_code == 201


class TestPolicyCommands:
    def test_apply_diff_export_round_trip(self, live_server: LiveServer, tmp_path: Path) -> None:
        seed_products(live_server)
        plan = cli(live_server, "diff", "-f", str(EXAMPLES))
        assert plan.returncode == 1  # changes pending
        assert "create" in plan.stdout

        applied = cli(live_server, "apply", "-f", str(EXAMPLES), "-m", "adopt the standard")
        assert applied.returncode == 0, applied.stderr
        assert "applied: 6 create" in applied.stdout

        again = cli(live_server, "apply", "-f", str(EXAMPLES))
        assert "applied: 6 unchanged" in again.stdout
        assert cli(live_server, "diff", "-f", str(EXAMPLES)).returncode == 0

        exported = tmp_path / "exported"
        out = cli(live_server, "export", "-o", str(exported))
        assert out.returncode == 0, out.stderr
        assert (exported / "templates" / "tier-1-classifier.yaml").exists()
        # what was exported applies as "unchanged": export is faithful
        assert "6 unchanged" in cli(live_server, "apply", "-f", str(exported)).stdout

    def test_invalid_file_applies_nothing(self, live_server: LiveServer, tmp_path: Path) -> None:
        seed_products(live_server)
        folder = tmp_path / "policies"
        shutil.copytree(EXAMPLES, folder)
        fraud = folder / "products" / "fraud-scorer.yaml"
        doc = yaml.safe_load(fraud.read_text())
        doc["spec"]["overrides"]["rules"]["staleness"]["max_age"] = "365d"
        fraud.write_text(yaml.safe_dump(doc))
        out = cli(live_server, "apply", "-f", str(folder))
        assert out.returncode == 1
        assert "max_age" in out.stderr
        listing = cli(live_server, "export")
        assert listing.stdout.strip() == ""
