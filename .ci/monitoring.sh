#!/usr/bin/env bash
# Monitoring checks for docker/: installs Debian's prometheus and prometheus-alertmanager when
# promtool, prometheus or the alertmanager binary is missing (the e2e test in
# tests/integration/test_prometheus_e2e.py needs them too), then validates the rules, their unit
# tests, the Prometheus config and the Alertmanager config. Run from anywhere: `bash .ci/monitoring.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  missing+=(prometheus)
fi
if ! command -v prometheus-alertmanager >/dev/null && ! command -v alertmanager >/dev/null; then
  missing+=(prometheus-alertmanager)
fi
# Debian's docker-compose (v1, Python) validates docker/compose.yaml without a Docker daemon
# when the `docker compose` plugin is absent (tests/ops/test_packaging.py)
if ! command -v docker-compose >/dev/null && ! docker compose version >/dev/null 2>&1; then
  missing+=(docker-compose)
fi
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]}"
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  # --no-install-recommends: the binaries only, no exporters or web assets
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
promtool --version | head -n 1

promtool check rules docker/prometheus/rules/*.yml
# rule_files in the test files are relative to them
(cd docker/prometheus/tests && promtool test rules ./*.yml)
promtool check config docker/prometheus/prometheus.yml
amtool check-config docker/alertmanager/alertmanager.yml
