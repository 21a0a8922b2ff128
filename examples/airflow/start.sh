#!/usr/bin/env bash
# A local Apache Airflow 3 for the README walkthrough: its own virtualenv and SQLite database in
# $AIRFLOW_HOME (default ./.airflow), the simple auth manager with user `admin` and a generated
# password (written to $AIRFLOW_HOME/password, which a retrigger connection can reference as
# file:...), the DAGs of examples/airflow/dags, on http://127.0.0.1:${AIRFLOW_PORT:-8080}.
# Ctrl-C stops it. First run: about a minute to install.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$PWD/.airflow}"
PORT="${AIRFLOW_PORT:-8080}"
VERSION="${AIRFLOW_VERSION:-3.3.2}"
mkdir -p "$AIRFLOW_HOME"
if [ ! -x "$AIRFLOW_HOME/venv/bin/airflow" ]; then
  echo "installing apache-airflow $VERSION into $AIRFLOW_HOME/venv"
  python3 -m venv "$AIRFLOW_HOME/venv"
  "$AIRFLOW_HOME/venv/bin/pip" install --quiet "apache-airflow==$VERSION"
fi
if [ ! -s "$AIRFLOW_HOME/password" ]; then
  python3 -c 'import secrets; print(secrets.token_urlsafe(16))' > "$AIRFLOW_HOME/password"
  chmod 600 "$AIRFLOW_HOME/password"
fi
python3 - "$AIRFLOW_HOME" <<'PY'
import json, pathlib, sys
home = pathlib.Path(sys.argv[1])
(home / "passwords.json").write_text(json.dumps({"admin": (home / "password").read_text().strip()}))
PY
if [ ! -s "$AIRFLOW_HOME/jwt_secret" ]; then
  python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > "$AIRFLOW_HOME/jwt_secret"
fi
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$AIRFLOW_HOME/airflow.db"
export AIRFLOW__CORE__DAGS_FOLDER="$HERE/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False   # a paused DAG's runs stay queued
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=admin:admin
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE="$AIRFLOW_HOME/passwords.json"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$PORT/execution/"
export AIRFLOW__API__BASE_URL="http://127.0.0.1:$PORT"
AIRFLOW__API_AUTH__JWT_SECRET="$(cat "$AIRFLOW_HOME/jwt_secret")"
export AIRFLOW__API_AUTH__JWT_SECRET AIRFLOW__API__SECRET_KEY="$AIRFLOW__API_AUTH__JWT_SECRET"
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=5
AIRFLOW="$AIRFLOW_HOME/venv/bin/airflow"
"$AIRFLOW" db migrate >"$AIRFLOW_HOME/migrate.log" 2>&1

pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait' EXIT INT TERM
"$AIRFLOW" api-server --host 127.0.0.1 --port "$PORT" >"$AIRFLOW_HOME/api-server.log" 2>&1 & pids+=($!)
"$AIRFLOW" scheduler --skip-serve-logs >"$AIRFLOW_HOME/scheduler.log" 2>&1 & pids+=($!)
"$AIRFLOW" dag-processor >"$AIRFLOW_HOME/dag-processor.log" 2>&1 & pids+=($!)
echo "Airflow on http://127.0.0.1:$PORT (user admin, password in $AIRFLOW_HOME/password); logs in $AIRFLOW_HOME"
wait
