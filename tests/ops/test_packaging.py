"""docker/ checked without a container engine: metric names in dashboards and rules, the compose
file's wiring, the Kubernetes manifests and the Dockerfile."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from retrigger.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
METRICS_DOC = ROOT / "docs" / "metrics.md"
IMAGE_UID = 10001

METRIC_NAME = re.compile(r"\bretrigger_[a-z0-9_]*[a-z0-9]\b")
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_all_yaml(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def documented_metrics() -> frozenset[str]:
    """Every ``retrigger_*`` name docs/metrics.md mentions (tables and example queries)."""
    return frozenset(METRIC_NAME.findall(METRICS_DOC.read_text()))


def dashboard() -> dict[str, Any]:
    model: dict[str, Any] = json.loads((DOCKER / "grafana/dashboards/retrigger.json").read_text())
    return model


def dashboard_exprs() -> list[str]:
    return [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]


def alert_rules() -> list[dict[str, Any]]:
    rules = []
    for path in sorted((DOCKER / "prometheus/rules").glob("*.yml")):
        for group in load_yaml(path)["groups"]:
            rules.extend(group["rules"])
    return rules


def settings_variables() -> set[str]:
    return {f"RETRIGGER_{name.upper()}" for name in Settings.model_fields}


class TestMetricNames:
    @pytest.mark.parametrize("source", ["dashboard", "alert rules"])
    def test_every_referenced_metric_is_documented(self, source: str) -> None:
        exprs = dashboard_exprs() if source == "dashboard" else [r["expr"] for r in alert_rules()]
        referenced = {name for expr in exprs for name in METRIC_NAME.findall(expr)}
        assert referenced
        documented = documented_metrics()

        def known(name: str) -> bool:
            base = next((name[: -len(s)] for s in HISTOGRAM_SERIES if name.endswith(s)), name)
            return name in documented or base in documented

        assert sorted(n for n in referenced if not known(n)) == []


class TestDashboard:
    def test_panels_have_unique_ids_and_fit_the_grid(self) -> None:
        panels = dashboard()["panels"]
        ids = [p["id"] for p in panels]
        assert len(ids) == len(set(ids))
        for p in panels:
            pos = p["gridPos"]
            assert pos["x"] + pos["w"] <= 24, p["title"]

    def test_queries_use_the_provisioned_datasource(self) -> None:
        model = dashboard()
        provisioned = load_yaml(DOCKER / "grafana/provisioning/datasources/prometheus.yaml")
        uid = provisioned["datasources"][0]["uid"]
        variable = next(v for v in model["templating"]["list"] if v["type"] == "datasource")
        assert variable["current"]["value"] == uid
        for panel in model["panels"]:
            for target in panel.get("targets", []):
                assert target["datasource"]["uid"] == "${datasource}", panel["title"]

    def test_shows_what_the_issue_asks_for(self) -> None:
        panels = dashboard()["panels"]
        exprs = "\n".join(dashboard_exprs())
        assert "sum by (product) (increase(retrigger_evaluations_total" in exprs
        heatmaps = [p for p in panels if p["type"] == "heatmap"]
        # one scale for every test: effect over min_effect (raw statistics are not comparable)
        targets = heatmaps[0]["targets"]
        assert any("retrigger_feature_drift_effect_ratio" in t["expr"] for t in targets)
        for metric in (
            "retrigger_runs",
            "retrigger_dispatch_errors_total",
            "retrigger_decision_to_submit_seconds_bucket",
            "retrigger_submit_to_terminal_seconds_bucket",
            "retrigger_model_age_seconds",
        ):
            assert metric in exprs

    def test_provider_loads_the_dashboard_folder_compose_mounts(self) -> None:
        provider = load_yaml(DOCKER / "grafana/provisioning/dashboards/retrigger.yaml")
        path = provider["providers"][0]["options"]["path"]
        grafana = load_yaml(DOCKER / "compose.yaml")["services"]["grafana"]
        assert f"./grafana/dashboards:{path}:ro" in grafana["volumes"]


class TestAlertRules:
    def test_every_alert_is_routable_and_explained(self) -> None:
        for rule in alert_rules():
            assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
            # component=retrigger keeps service alerts out of retrigger's own webhook
            assert rule["labels"]["component"] == "retrigger", rule["alert"]
            assert rule["annotations"]["summary"]
            assert rule["annotations"]["description"]

    def test_every_alert_has_a_unit_test(self) -> None:
        tested = {
            case["alertname"]
            for path in (DOCKER / "prometheus/tests").glob("*.yml")
            for test in load_yaml(path)["tests"]
            for case in test.get("alert_rule_test", [])
            if case["exp_alerts"]
        }
        assert {r["alert"] for r in alert_rules()} == tested


class TestCompose:
    compose: dict[str, Any] = load_yaml(DOCKER / "compose.yaml")

    def services(self) -> dict[str, Any]:
        services: dict[str, Any] = self.compose["services"]
        return services

    def test_the_whole_loop_is_there(self) -> None:
        assert set(self.services()) >= {
            "postgres",
            "api",
            "worker",
            "prometheus",
            "alertmanager",
            "grafana",
        }
        assert self.services()["api"]["command"] == ["serve"]
        assert self.services()["worker"]["command"][0] == "worker"

    def test_references_resolve(self) -> None:
        services = self.services()
        volumes = set(self.compose.get("volumes", {}))
        for name, service in services.items():
            for dependency in service.get("depends_on", []):
                assert dependency in services, (name, dependency)
            for mount in service.get("volumes", []):
                source = mount.split(":")[0]
                if source.startswith("."):
                    assert (DOCKER / source).exists(), (name, source)
                else:
                    assert source in volumes, (name, source)
            build = service.get("build")
            if build is not None:
                context = (DOCKER / build["context"]).resolve()
                assert (context / build["dockerfile"]).is_file()

    def test_ports_are_published_on_loopback_only(self) -> None:
        for name, service in self.services().items():
            for port in service.get("ports", []):
                assert port.startswith("127.0.0.1:"), (name, port)

    def test_retrigger_settings_exist(self) -> None:
        """A misspelt RETRIGGER_ variable would be ignored silently: every one must be a setting."""
        known = settings_variables()
        for name, service in self.services().items():
            for variable in service.get("environment", {}):
                if variable.startswith("RETRIGGER_"):
                    assert variable in known, (name, variable)

    def test_prometheus_scrapes_the_ports_retrigger_serves(self) -> None:
        services = self.services()
        config = load_yaml(DOCKER / "prometheus/prometheus.yml")
        jobs = {job["job_name"]: job for job in config["scrape_configs"]}
        api = jobs["retrigger-api"]["dns_sd_configs"][0]
        assert api["names"] == ["api"]
        assert api["port"] == 8000
        assert "127.0.0.1:8000:8000" in services["api"]["ports"]
        worker = jobs["retrigger-worker"]["dns_sd_configs"][0]
        command = services["worker"]["command"]
        assert worker["names"] == ["worker"]
        assert command[command.index("--metrics-port") + 1] == str(worker["port"])
        targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
        assert targets == ["alertmanager:9093"]
        assert "127.0.0.1:9093:9093" in services["alertmanager"]["ports"]
        rules_mount = "./prometheus/rules:/etc/prometheus/rules:ro"
        assert rules_mount in services["prometheus"]["volumes"]
        assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]

    def test_alertmanager_reaches_the_webhook_with_the_ingest_key(self) -> None:
        services = self.services()
        config = load_yaml(DOCKER / "alertmanager/alertmanager.yml")
        receiver = next(r for r in config["receivers"] if r["name"] == "retrigger")
        webhook = receiver["webhook_configs"][0]
        assert webhook["url"] == "http://api:8000/v1/webhooks/alertmanager"
        assert webhook["send_resolved"] is True
        key_file = Path(webhook["http_config"]["authorization"]["credentials_file"])
        # the key file lives in the volume the ingest-key service writes into
        mounts = dict(m.split(":")[:2] for m in services["alertmanager"]["volumes"])
        assert mounts["ingest-key"] == str(key_file.parent)
        writer = dict(m.split(":")[:2] for m in services["ingest-key"]["volumes"])
        assert writer["ingest-key"] == "/var/lib/retrigger"  # the image's working directory
        assert f"> {key_file.name}.tmp" in services["ingest-key"]["command"][-1]
        assert str(IMAGE_UID) in services["alertmanager"]["group_add"]
        depends = services["alertmanager"]["depends_on"]["ingest-key"]
        assert depends["condition"] == "service_completed_successfully"

    def test_grafana_datasource_points_at_the_prometheus_service(self) -> None:
        provisioned = load_yaml(DOCKER / "grafana/provisioning/datasources/prometheus.yaml")
        assert provisioned["datasources"][0]["url"] == "http://prometheus:9090"
        assert "prometheus" in self.services()

    def test_docker_compose_accepts_the_file(self, tmp_path: Path) -> None:
        """A real Compose implementation checks the file (no daemon needed): the `docker
        compose` plugin, else Debian's `docker-compose` v1, which `.ci/monitoring.sh` installs."""
        docker = shutil.which("docker")
        plugin = (
            docker is not None
            and not (
                subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
            ).returncode
        )
        if plugin:
            assert docker is not None
            command = [docker, "compose", "-f", str(DOCKER / "compose.yaml")]
        elif legacy := shutil.which("docker-compose"):
            # v1 predates the top-level `name`; everything else is checked against its schema
            spec = load_yaml(DOCKER / "compose.yaml")
            assert spec.pop("name") == "retrigger"
            copy = tmp_path / "compose.yaml"
            copy.write_text(yaml.safe_dump(spec))
            command = [legacy, "--project-directory", str(DOCKER), "-f", str(copy)]
        elif os.environ.get("CI"):
            pytest.fail("CI must validate docker/compose.yaml: install docker-compose")
        else:
            pytest.skip("neither `docker compose` nor `docker-compose` here")
        result = subprocess.run(
            [*command, "config", "--quiet"], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr

    def test_a_misspelt_key_is_caught(self, tmp_path: Path) -> None:
        legacy = shutil.which("docker-compose")
        if legacy is None:
            pytest.skip("docker-compose (v1) is not installed")
        spec = load_yaml(DOCKER / "compose.yaml")
        spec.pop("name")
        spec["services"]["api"]["healtcheck"] = spec["services"]["api"].pop("healthcheck")
        copy = tmp_path / "compose.yaml"
        copy.write_text(yaml.safe_dump(spec))
        command = [legacy, "--project-directory", str(DOCKER), "-f", str(copy), "config", "-q"]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        assert result.returncode != 0
        assert "healtcheck" in result.stderr


class TestKubernetes:
    K8S = DOCKER / "k8s"

    def resources(self) -> list[dict[str, Any]]:
        kustomization = load_yaml(self.K8S / "kustomization.yaml")
        docs = []
        for name in kustomization["resources"]:
            docs.extend(load_all_yaml(self.K8S / name))
        return docs

    def of_kind(self, kind: str) -> dict[str, dict[str, Any]]:
        return {r["metadata"]["name"]: r for r in self.resources() if r["kind"] == kind}

    def test_the_scrape_config_names_jobs_as_the_alert_rules_expect(self) -> None:
        # Debian's promtool is built without Kubernetes discovery: checked by structure here
        config = load_yaml(DOCKER / "prometheus/kubernetes.yml")
        (job,) = config["scrape_configs"]
        assert job["kubernetes_sd_configs"] == [{"role": "pod"}]
        relabel = {r.get("target_label"): r for r in job["relabel_configs"]}
        naming = relabel["job"]
        assert naming["source_labels"] == [
            "__meta_kubernetes_pod_label_app_kubernetes_io_component"
        ]
        up_rule = next(r for r in alert_rules() if r["alert"] == "RetriggerTargetDown")
        job_regex = re.search(r'job=~"([^"]+)"', up_rule["expr"])
        assert job_regex is not None
        for deployment in self.of_kind("Deployment").values():
            pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
            annotations = deployment["spec"]["template"]["metadata"]["annotations"]
            assert pod_labels["app.kubernetes.io/name"] == "retrigger"
            assert annotations["prometheus.io/scrape"] == "true"
            component = pod_labels["app.kubernetes.io/component"]
            named = re.sub(naming["regex"], naming["replacement"].replace("$1", r"\1"), component)
            assert re.fullmatch(job_regex.group(1), named), named

    def test_every_file_is_listed_in_the_kustomization(self) -> None:
        listed = set(load_yaml(self.K8S / "kustomization.yaml")["resources"])
        on_disk = {p.name for p in self.K8S.glob("*.yaml")} - {"kustomization.yaml"}
        assert listed == on_disk

    def test_selectors_match_pod_labels(self) -> None:
        for name, deployment in self.of_kind("Deployment").items():
            selector = deployment["spec"]["selector"]["matchLabels"]
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            assert selector.items() <= labels.items(), name
        service = self.of_kind("Service")["retrigger"]
        api_pod = self.of_kind("Deployment")["retrigger-api"]["spec"]["template"]
        assert service["spec"]["selector"].items() <= api_pod["metadata"]["labels"].items()
        ports = {p["name"] for p in api_pod["spec"]["containers"][0]["ports"]}
        assert service["spec"]["ports"][0]["targetPort"] in ports
        pdb = self.of_kind("PodDisruptionBudget")["retrigger-api"]
        assert pdb["spec"]["selector"]["matchLabels"] == service["spec"]["selector"]

    def test_api_replicas_are_probed_on_health_and_readiness(self) -> None:
        api = self.of_kind("Deployment")["retrigger-api"]
        assert api["spec"]["replicas"] >= 2
        container = api["spec"]["template"]["spec"]["containers"][0]
        assert container["args"] == ["serve"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        env = {e["name"]: e for e in container["env"]}
        assert env["RETRIGGER_EMBEDDED_WORKER"]["value"] == "false"

    def test_worker_runs_the_worker_and_serves_metrics(self) -> None:
        worker = self.of_kind("Deployment")["retrigger-worker"]
        container = worker["spec"]["template"]["spec"]["containers"][0]
        args = container["args"]
        assert args[0] == "worker"
        port = int(args[args.index("--metrics-port") + 1])
        assert container["ports"][0]["containerPort"] == port
        assert container["livenessProbe"]["httpGet"]["port"] == container["ports"][0]["name"]

    def test_pods_run_as_the_image_user_without_privileges(self) -> None:
        for name, deployment in self.of_kind("Deployment").items():
            pod = deployment["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True, name
            assert pod["securityContext"]["runAsUser"] == IMAGE_UID, name
            for container in pod["containers"]:
                security = container["securityContext"]
                assert security["allowPrivilegeEscalation"] is False
                assert security["readOnlyRootFilesystem"] is True
                assert security["capabilities"]["drop"] == ["ALL"]

    def test_secrets_are_referenced_never_inlined(self) -> None:
        known = settings_variables()
        config = self.of_kind("ConfigMap")["retrigger-config"]
        assert set(config["data"]) <= known
        assert not self.of_kind("Secret")
        for deployment in self.of_kind("Deployment").values():
            container = deployment["spec"]["template"]["spec"]["containers"][0]
            env = {e["name"]: e for e in container["env"]}
            assert set(env) <= known
            url = env["RETRIGGER_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
            assert url == {"name": "retrigger-secrets", "key": "database-url"}

    def test_kustomize_renders(self) -> None:
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            pytest.skip("kubectl not installed; the structural tests above still run")
        result = subprocess.run(
            [kubectl, "kustomize", str(self.K8S)], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0, result.stderr
        kinds = sorted(doc["kind"] for doc in yaml.safe_load_all(result.stdout))
        assert kinds == ["ConfigMap", "Deployment", "Deployment", "PodDisruptionBudget", "Service"]


class TestDockerfile:
    dockerfile = (DOCKER / "Dockerfile").read_text()

    def instructions(self, keyword: str) -> list[str]:
        joined = re.sub(r"\\\n\s*", " ", self.dockerfile)
        return [
            line.split(None, 1)[1]
            for line in joined.splitlines()
            if line.split(None, 1)[:1] == [keyword]
        ]

    def test_runs_as_a_fixed_non_root_user(self) -> None:
        assert self.instructions("USER") == [f"{IMAGE_UID}:{IMAGE_UID}"]
        assert f"--uid {IMAGE_UID}" in self.dockerfile

    def test_has_a_healthcheck_on_healthz_and_the_entrypoint(self) -> None:
        (healthcheck,) = self.instructions("HEALTHCHECK")
        assert "/healthz" in healthcheck
        assert self.instructions("ENTRYPOINT") == ['["retrigger-entrypoint"]']
        assert self.instructions("CMD")[-1] == '["serve"]'
        assert any(
            "docker/entrypoint.sh /usr/local/bin/retrigger-entrypoint" in c
            for c in self.instructions("COPY")
        )

    def test_copies_only_what_the_ignore_file_lets_in(self) -> None:
        allowed = [
            line[1:].rstrip("/")
            for line in (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
            if line.startswith("!")
        ]
        for copy in self.instructions("COPY"):
            if copy.startswith("--from"):
                continue
            sources = [a for a in copy.split() if not a.startswith("--")][:-1]
            for source in sources:
                source = source.rstrip("/")
                assert source in allowed, source
                assert (ROOT / source).exists(), source
