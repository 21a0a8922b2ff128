#!/bin/sh
# Container entrypoint. `serve` and `worker` first bring a PostgreSQL schema to head, then become
# retrigger (exec: signals reach it directly); other retrigger commands run as given, and anything
# else (sh, python) runs unchanged.
#   MIGRATE_AT_START    true (default) or false: run `retrigger db upgrade` before serve/worker
#   MIGRATE_ATTEMPTS    tries before giving up (default 30)
#   MIGRATE_RETRY_SECONDS  pause between tries (default 2)
set -eu

migrate() {
    case "${RETRIGGER_DATABASE_URL:-}" in
        postgres*) ;;
        *) return 0 ;;  # SQLite migrates itself when `serve` starts
    esac
    if [ "${MIGRATE_AT_START:-true}" != "true" ]; then
        return 0
    fi
    attempts="${MIGRATE_ATTEMPTS:-30}"
    attempt=1
    # A failure is retried: the database may still be starting, or another replica may be
    # migrating in the same moment (the upgrade is one transaction, so the loser rolls back and
    # finds the schema at head on its next try).
    until retrigger db upgrade; do
        if [ "$attempt" -ge "$attempts" ]; then
            echo "retrigger-entrypoint: database migration failed $attempt times, giving up" >&2
            exit 1
        fi
        echo "retrigger-entrypoint: migration attempt $attempt failed, retrying" >&2
        attempt=$((attempt + 1))
        sleep "${MIGRATE_RETRY_SECONDS:-2}"
    done
}

if [ "$#" -eq 0 ]; then
    set -- serve
fi

case "$1" in
    serve | worker)
        migrate
        exec retrigger "$@"
        ;;
    db | keys | policy | signals | demo | version | --help)
        exec retrigger "$@"
        ;;
    *)
        exec "$@"
        ;;
esac
