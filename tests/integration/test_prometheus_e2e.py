"""The monitoring loop with real peers: Prometheus scrapes a live retrigger, one of its alert rules
fires, Alertmanager delivers the alert to retrigger's webhook with an ingest key, and the
product's ``alert`` rule fires a decision. Prometheus and Alertmanager are Debian's binaries,
started on loopback ports with generated configurations."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from retrigger import __version__
from tests.fixtures.server import LiveServer, free_port
from tests.integration.monitoring import Process, require_tool, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SHIPPED_RULES = ROOT / "docker" / "prometheus" / "rules" / "retrigger.rules.yml"
PRODUCT = "checkout-ranker"
ALERT = "CheckoutRankerRetrainRequested"
RULE_ID = "prometheus-alert"
# generous for a loaded 2-core CI machine; the loop itself takes a few seconds
TIMEOUT = 60.0


@dataclass
class Stack:
    server: LiveServer
    prometheus: Process
    prometheus_url: str
    alertmanager: Process
    alertmanager_url: str


def admin_client(server: LiveServer) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}, timeout=10
    )


def onboard(http: httpx.Client) -> str:
    """A team, a product whose policy fires on ``ALERT``, and an ingest key for Alertmanager."""
    r = http.post("/v1/teams", json={"name": "ranking"})
    assert r.status_code == 201, r.text
    r = http.post("/v1/products", json={"name": PRODUCT, "team": "ranking"})
    assert r.status_code == 201, r.text
    rule = {"id": RULE_ID, "type": "alert", "matchers": [{"name": "alertname", "value": ALERT}]}
    body = {"spec": {"rules": [rule]}, "change_reason": "retrain when monitoring asks"}
    r = http.put(f"/v1/products/{PRODUCT}/policy", json=body)
    assert r.status_code == 200, r.text
    key = {"name": "alertmanager", "team": "ranking", "scopes": ["ingest"]}
    r = http.post("/v1/api-keys", json=key)
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def alert_rules() -> dict[str, Any]:
    """A rule that is true as soon as retrigger has been scraped once."""
    rule = {
        "alert": ALERT,
        "expr": 'retrigger_build_info{job="retrigger"} == 1',
        "for": "0s",
        "labels": {"product": PRODUCT, "severity": "warning"},
        "annotations": {"summary": "retrain {{ $labels.product }}"},
    }
    return {"groups": [{"name": "e2e", "interval": "1s", "rules": [rule]}]}


def prometheus_config(target: str, alertmanager: str, rule_files: list[Path]) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(p) for p in rule_files],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]},
        "scrape_configs": [{"job_name": "retrigger", "static_configs": [{"targets": [target]}]}],
    }


def alertmanager_config(webhook: str, key_file: Path) -> dict[str, Any]:
    return {
        "route": {
            "receiver": "retrigger",
            "group_by": ["alertname", "product"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "retrigger",
                "webhook_configs": [
                    {
                        "url": webhook,
                        "send_resolved": True,
                        "http_config": {
                            "authorization": {
                                "type": "Bearer",
                                "credentials_file": str(key_file),
                            }
                        },
                    }
                ],
            }
        ],
    }


def write_yaml(path: Path, content: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


@pytest.fixture
def stack(live_server: LiveServer, tmp_path: Path) -> Iterator[Stack]:
    """Alertmanager and Prometheus wired to ``live_server``, stopped after the test."""
    prometheus_bin = require_tool("prometheus")
    alertmanager_bin = require_tool("prometheus-alertmanager", "alertmanager")
    with admin_client(live_server) as http:
        token = onboard(http)
    key_file = tmp_path / "ingest-key"
    key_file.write_text(token)
    key_file.chmod(0o600)

    am_port, prom_port = free_port(), free_port()
    am_url, prom_url = f"http://127.0.0.1:{am_port}", f"http://127.0.0.1:{prom_port}"
    webhook = f"{live_server.url}/v1/webhooks/alertmanager"
    am_config = write_yaml(tmp_path / "alertmanager.yml", alertmanager_config(webhook, key_file))
    rules = write_yaml(tmp_path / "e2e.rules.yml", alert_rules())
    target = live_server.url.removeprefix("http://")
    prom_config = write_yaml(
        tmp_path / "prometheus.yml",
        prometheus_config(target, f"127.0.0.1:{am_port}", [rules, SHIPPED_RULES]),
    )
    alertmanager = Process(
        "alertmanager",
        [
            alertmanager_bin,
            f"--config.file={am_config}",
            f"--storage.path={tmp_path / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",  # no gossip: a single instance
        ],
        tmp_path / "alertmanager.log",
    )
    prometheus = Process(
        "prometheus",
        [
            prometheus_bin,
            f"--config.file={prom_config}",
            f"--storage.tsdb.path={tmp_path / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        tmp_path / "prometheus.log",
    )
    try:
        alertmanager.start(f"{am_url}/-/ready")
        prometheus.start(f"{prom_url}/-/ready")
        yield Stack(live_server, prometheus, prom_url, alertmanager, am_url)
    finally:
        prometheus.stop()
        alertmanager.stop()


def query(prometheus_url: str, promql: str) -> list[dict[str, Any]]:
    """The instant vector ``promql`` evaluates to now."""
    r = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": promql}, timeout=5)
    r.raise_for_status()
    result: list[dict[str, Any]] = r.json()["data"]["result"]
    return result


def prometheus_alerts(prometheus_url: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{prometheus_url}/api/v1/alerts", timeout=5)
    r.raise_for_status()
    alerts: list[dict[str, Any]] = r.json()["data"]["alerts"]
    return alerts


def alertmanager_alerts(alertmanager_url: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{alertmanager_url}/api/v2/alerts", timeout=5)
    r.raise_for_status()
    alerts: list[dict[str, Any]] = r.json()
    return alerts


class TestPrometheusAlertmanagerLoop:
    def test_an_alert_on_a_retrigger_metric_fires_a_decision(self, stack: Stack) -> None:
        def logs() -> str:
            return stack.prometheus.tail() + "\n" + stack.alertmanager.tail()

        # 1. Prometheus scrapes retrigger's /metrics
        series = wait_until(
            lambda: query(stack.prometheus_url, 'retrigger_build_info{job="retrigger"}'),
            timeout=TIMEOUT,
            what="retrigger_build_info scraped by Prometheus",
            diagnostics=logs,
        )
        assert series[0]["metric"]["version"] == __version__
        assert series[0]["value"][1] == "1"

        # the shipped service rules load in a real Prometheus next to the test's rule
        r = httpx.get(f"{stack.prometheus_url}/api/v1/rules", timeout=5)
        groups = {g["name"] for g in r.json()["data"]["groups"]}
        assert {"retrigger-availability", "retrigger-dispatch", "e2e"} <= groups

        # 2. the rule fires in Prometheus and 3. reaches Alertmanager
        wait_until(
            lambda: [
                a
                for a in prometheus_alerts(stack.prometheus_url)
                if a["labels"]["alertname"] == ALERT and a["state"] == "firing"
            ],
            timeout=TIMEOUT,
            what=f"{ALERT} firing in Prometheus",
            diagnostics=logs,
        )
        wait_until(
            lambda: [
                a
                for a in alertmanager_alerts(stack.alertmanager_url)
                if a["labels"]["alertname"] == ALERT
            ],
            timeout=TIMEOUT,
            what=f"{ALERT} received by Alertmanager",
            diagnostics=logs,
        )

        # 4. Alertmanager's webhook reaches retrigger, and the alert rule fires a decision
        with admin_client(stack.server) as http:

            def fired() -> list[dict[str, Any]]:
                params = {"product": PRODUCT, "outcome": "fired"}
                items: list[dict[str, Any]] = http.get("/v1/decisions", params=params).json()[
                    "items"
                ]
                return items

            decisions = wait_until(
                fired, timeout=TIMEOUT, what="a fired decision", diagnostics=logs
            )
            assert decisions[0]["fired_rules"] == [RULE_ID]
            detail = http.get(f"/v1/decisions/{decisions[0]['id']}").json()

        finding = next(f for f in detail["findings"] if f["rule_id"] == RULE_ID)
        matched = finding["details"]["matched"]
        assert len(matched) == 1
        assert matched[0]["source"] == "alertmanager"
        assert matched[0]["status"] == "firing"
        # the labels Prometheus attached: the scraped series' and the rule's own
        assert matched[0]["labels"]["job"] == "retrigger"
        assert matched[0]["labels"]["product"] == PRODUCT
        assert matched[0]["labels"]["version"] == __version__

        # 5. the decision is counted and Prometheus sees it on the next scrapes
        wait_until(
            lambda: query(
                stack.prometheus_url,
                f'retrigger_evaluations_total{{product="{PRODUCT}", outcome="fired"}} >= 1',
            ),
            timeout=TIMEOUT,
            what="the fired evaluation counted in Prometheus",
            diagnostics=logs,
        )

        # 6. both peers shut down cleanly on SIGTERM
        assert stack.prometheus.stop() == 0, stack.prometheus.tail()
        assert stack.alertmanager.stop() == 0, stack.alertmanager.tail()
