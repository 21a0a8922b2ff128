"""The monitoring configuration under docker/, checked by the tools that will load it: promtool
(rules, rule unit tests, Prometheus config, every dashboard query) and amtool (Alertmanager)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.monitoring import require_tool

DOCKER = Path(__file__).resolve().parents[2] / "docker"
RULES = sorted((DOCKER / "prometheus" / "rules").glob("*.yml"))
RULE_TESTS = sorted((DOCKER / "prometheus" / "tests").glob("*.yml"))
DASHBOARDS = sorted((DOCKER / "grafana" / "dashboards").glob("*.json"))

# Grafana's built-in variables, replaced by what Grafana would send, so promtool parses the query
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "1m",
    "$__range": "1d",
    "$product": "checkout-ranker",
}


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


def dashboard_queries(dashboard: Path) -> list[tuple[str, str]]:
    """``(panel title, PromQL)`` of every target of every panel, Grafana variables filled in."""
    model: dict[str, Any] = json.loads(dashboard.read_text())
    queries = []
    for panel in model["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            queries.append((panel["title"], expr))
    return queries


@pytest.fixture(scope="module")
def promtool() -> str:
    return require_tool("promtool")


class TestPrometheusRules:
    def test_rule_files_are_valid(self, promtool: str) -> None:
        assert RULES
        out = run(promtool, "check", "rules", *RULES).stdout
        assert "SUCCESS" in out

    def test_rule_unit_tests_pass(self, promtool: str) -> None:
        assert RULE_TESTS
        for test_file in RULE_TESTS:
            # rule_files in a test file are relative to the test file
            result = subprocess.run(
                [promtool, "test", "rules", test_file.name],
                cwd=test_file.parent,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert result.returncode == 0, result.stdout + result.stderr
            assert "SUCCESS" in result.stdout

    def test_a_broken_expectation_fails_the_unit_tests(self, promtool: str, tmp_path: Path) -> None:
        """The unit tests compare labels and annotations exactly: a wrong one is caught."""
        test_file = RULE_TESTS[0]
        spec = yaml.safe_load(test_file.read_text())
        spec["rule_files"] = [str((test_file.parent / f).resolve()) for f in spec["rule_files"]]
        firing = next(
            case for test in spec["tests"] for case in test["alert_rule_test"] if case["exp_alerts"]
        )
        firing["exp_alerts"][0]["exp_labels"]["severity"] = "wrong"
        broken = tmp_path / "broken.test.yml"
        broken.write_text(yaml.safe_dump(spec))
        result = subprocess.run(
            [promtool, "test", "rules", str(broken)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode != 0
        assert 'severity="wrong"' in result.stdout + result.stderr

    def test_prometheus_config_is_valid(self, promtool: str) -> None:
        run(promtool, "check", "config", DOCKER / "prometheus" / "prometheus.yml")


class TestDashboardQueries:
    def test_every_dashboard_query_parses(self, promtool: str, tmp_path: Path) -> None:
        """Each query becomes a recording rule, so promtool parses it as Prometheus would."""
        rules = []
        for dashboard in DASHBOARDS:
            for i, (title, expr) in enumerate(dashboard_queries(dashboard)):
                slug = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")
                rules.append({"record": f"dashboard:{slug}:{i}", "expr": expr})
        assert len(rules) > 20
        rule_file = tmp_path / "dashboard.rules.yml"
        rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
        run(promtool, "check", "rules", rule_file)


ALERTMANAGER_CONFIG = DOCKER / "alertmanager" / "alertmanager.yml"


@pytest.fixture(scope="module")
def amtool() -> str:
    return require_tool("amtool")


class TestAlertmanagerConfig:
    def test_config_is_valid(self, amtool: str) -> None:
        out = run(amtool, "check-config", ALERTMANAGER_CONFIG).stdout
        assert "SUCCESS" in out

    @pytest.mark.parametrize(
        ("labels", "receiver"),
        [
            # a product's monitoring alert goes to retrigger's webhook
            (["alertname=DataQualityDegraded", "product=fraud-scorer"], "retrigger"),
            # alerts about retrigger itself never loop back into it, even with a product label
            (["alertname=RetriggerDispatchFailed", "component=retrigger"], "platform-team"),
            (["alertname=RetriggerRunStuck", "component=retrigger", "product=x"], "platform-team"),
            # anything else stays with the platform team
            (["alertname=NodeDown"], "platform-team"),
        ],
    )
    def test_routing(self, amtool: str, labels: list[str], receiver: str) -> None:
        result = run(
            amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER_CONFIG}", *labels
        )
        assert result.stdout.strip() == receiver
