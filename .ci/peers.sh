#!/usr/bin/env bash
# Create or refresh the cached virtual environments of the integration tests' peers (Apache
# Airflow 3, Prefect 3, Dagster; versions pinned in tests/integration/peers.py), each with a
# migrated empty database to start from. Cache: $RETRIGGER_PEERS_DIR, default
# ~/.cache/retrigger/peers; other versions found there are removed.
# Usage: bash .ci/peers.sh [airflow|prefect|dagster ...]
set -euo pipefail
cd "$(dirname "$0")/.."
# any Python 3.10+ will do: the venvs are built from the interpreter that runs this
PYTHON="${RETRIGGER_PEERS_PYTHON:-python3}"
exec "$PYTHON" -m tests.integration.peers install --prune "$@"
