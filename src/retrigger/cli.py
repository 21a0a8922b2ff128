"""The ``retrigger`` command. Heavy imports (SQLAlchemy, FastAPI, scipy) happen inside commands,
so ``retrigger --help`` answers in about 0.1 s."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from retrigger.cli_policy import policy_app

if TYPE_CHECKING:
    from retrigger.config import Settings
    from retrigger.db.session import Database

app = typer.Typer(
    name="retrigger",
    help="Decide, explain and launch ML model retraining for every product.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema: apply and inspect migrations.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: create, list, revoke.", no_args_is_help=True)
signals_app = typer.Typer(help="Ingested signals: retention.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")
app.add_typer(signals_app, name="signals")
app.add_typer(policy_app, name="policy")


def _settings(**overrides: Any) -> Settings:
    from pydantic import ValidationError

    from retrigger.config import Settings

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        typer.echo(f"configuration error:\n{exc}", err=True)
        raise typer.Exit(2) from None


def _run(coro: Any) -> Any:
    import asyncio

    return asyncio.run(coro)


async def _prepare_database(
    settings: Settings, db: Database, *, bootstrap: bool = True
) -> str | None:
    """Migrate (SQLite) or verify the schema (PostgreSQL); create the first admin key if none."""
    from retrigger.auth import service as auth_service
    from retrigger.db import migrate

    if settings.should_auto_migrate:
        await migrate.upgrade(db.engine)
    elif not await migrate.is_at_head(db.engine):
        current = await migrate.current_revision(db.engine)
        typer.echo(
            f"database schema is at {current}, this version needs {migrate.head_revision()}.\n"
            "Run `retrigger db upgrade` (with the same RETRIGGER_DATABASE_URL) first.",
            err=True,
        )
        raise typer.Exit(3)
    if not bootstrap:
        return None
    token = settings.bootstrap_admin_token
    async with db.session_scope() as session:
        return await auth_service.ensure_bootstrap_key(
            session, token=token.get_secret_value() if token else None
        )


def _prepare_or_exit(settings: Settings, *, bootstrap: bool) -> str | None:
    """Migrate or verify the schema before serving; exit 3 when the database is unreachable."""
    from retrigger.db.session import Database

    async def prepare() -> str | None:
        db = Database.from_settings(settings)
        try:
            return await _prepare_database(settings, db, bootstrap=bootstrap)
        finally:
            await db.dispose()

    try:
        token: str | None = _run(prepare())
    except OSError as exc:
        typer.echo(f"cannot reach the database: {exc}", err=True)
        raise typer.Exit(3) from None
    return token


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [RETRIGGER_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [RETRIGGER_PORT].")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes [RETRIGGER_WORKERS].")
    ] = None,
) -> None:
    """Serve the API (on SQLite in the working directory unless RETRIGGER_DATABASE_URL is set)."""
    import logging
    import os
    import shutil
    import tempfile

    import uvicorn

    from retrigger import logs
    from retrigger.config import AuthMode

    settings = _settings(host=host, port=port, workers=workers)
    logs.configure(settings.log_level, settings.log_format)
    log = logging.getLogger("retrigger")

    token = _prepare_or_exit(settings, bootstrap=True)
    if token is not None and settings.bootstrap_admin_token is None:
        # printed once, to the terminal only: the database keeps a hash
        typer.echo(
            "\n  First start: created an org admin API key (shown only now, store it):\n\n"
            f"    {token}\n\n  export RETRIGGER_TOKEN={token}\n"
        )
    if settings.auth is AuthMode.disabled:
        log.warning(
            "!!! AUTHENTICATION IS DISABLED (RETRIGGER_AUTH=disabled): anyone reaching "
            "this port is an admin. Use this only on a laptop. !!!"
        )
    log.info("retrigger serving on http://%s:%s (docs at /docs)", settings.host, settings.port)
    metrics_dir = None
    if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # prometheus-client's own switch, read by each worker at import: every worker writes its
        # metrics there and /metrics merges them (docs/metrics.md)
        metrics_dir = tempfile.mkdtemp(prefix="retrigger-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run(
            "retrigger.main:app_factory",
            factory=True,
            host=settings.host,
            port=settings.port,
            workers=settings.workers,
            log_config=None,
            proxy_headers=True,
        )
    finally:
        if metrics_dir is not None:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
            shutil.rmtree(metrics_dir, ignore_errors=True)


@app.command()
def worker(
    metrics_port: Annotated[
        int,
        typer.Option(help="Serve /metrics and /healthz of this process on this port (0: off)."),
    ] = 0,
) -> None:
    """Run the dispatcher, run-status poller and periodic scheduler (production: next to
    API replicas started with RETRIGGER_EMBEDDED_WORKER=false)."""
    import asyncio
    import contextlib
    import logging

    from retrigger import logs, worker, worker_health

    settings = _settings()
    logs.configure(settings.log_level, settings.log_format)

    _prepare_or_exit(settings, bootstrap=False)
    health = worker_health.WorkerHealth()
    server = None
    if metrics_port:
        # /metrics, and /healthz for the probes: 503 until the event loop runs and the
        # dispatcher has finished a pass, or once either stalls
        health.watch_event_loop()
        server = worker_health.HealthServer(health, port=metrics_port, addr=settings.host)

    async def run() -> None:
        pulse = asyncio.create_task(health.run_pulse(), name="retrigger health pulse")
        try:
            await worker.run_forever(
                settings, on_started=health.watch_worker if metrics_port else None
            )
        finally:
            pulse.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pulse

    logging.getLogger("retrigger").info("retrigger worker started")
    try:
        _run(run())
    finally:
        if server is not None:
            server.close()


@app.command()
def demo(
    url: Annotated[
        str | None, typer.Option(help="A running server; default: start one on temporary SQLite.")
    ] = None,
    token: Annotated[
        str | None, typer.Option(help="Admin key for --url [RETRIGGER_TOKEN].")
    ] = None,
    connection_file: Annotated[
        Path | None,
        typer.Option(help="JSON body of POST /v1/connections: launch on a real orchestrator."),
    ] = None,
    pipeline: Annotated[
        str, typer.Option(help="Pipeline to launch (DAG id, deployment...).")
    ] = "retrain-fraud-scorer",
    keep: Annotated[bool, typer.Option(help="Keep the temporary server running.")] = False,
) -> None:
    """Watch the whole job: signals, explained decisions, and a retraining run launched."""
    from retrigger import demo as demo_module

    options = demo_module.DemoOptions(
        url=url, token=token, connection_file=connection_file, pipeline=pipeline, keep=keep
    )
    raise typer.Exit(demo_module.main(options, echo=typer.echo))


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Apply migrations up to REVISION (default: head)."""
    from retrigger.db import migrate
    from retrigger.db.session import Database

    async def go() -> str | None:
        db = Database.from_settings(_settings())
        try:
            await migrate.upgrade(db.engine, revision)
            return await migrate.current_revision(db.engine)
        finally:
            await db.dispose()

    typer.echo(f"database at {_run(go())}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument()]) -> None:
    """Revert migrations down to REVISION (`base` drops everything)."""
    from retrigger.db import migrate
    from retrigger.db.session import Database

    async def go() -> str | None:
        db = Database.from_settings(_settings())
        try:
            await migrate.downgrade(db.engine, revision)
            return await migrate.current_revision(db.engine)
        finally:
            await db.dispose()

    typer.echo(f"database at {_run(go())}")


@db_app.command("current")
def db_current() -> None:
    """Print the schema revision of the database and whether it is at head."""
    from retrigger.db import migrate
    from retrigger.db.session import Database

    async def go() -> str | None:
        db = Database.from_settings(_settings())
        try:
            return await migrate.current_revision(db.engine)
        finally:
            await db.dispose()

    current, head = _run(go()), migrate.head_revision()
    typer.echo(f"current: {current}\nhead:    {head}\n{'at head' if current == head else 'behind'}")
    if current != head:
        raise typer.Exit(1)


def _cli_principal() -> Any:
    from retrigger.auth.scopes import Principal, Scope

    return Principal(key_id="cli", team_id=None, scopes=frozenset({Scope.admin}))


@keys_app.command("create")
def keys_create(
    scope: Annotated[list[str], typer.Option("--scope", help="admin, write, ingest or read.")],
    team: Annotated[str | None, typer.Option(help="Team name; omit for an org-wide key.")] = None,
    name: Annotated[str, typer.Option(help="What the key is for.")] = "cli",
) -> None:
    """Create an API key and print its token (shown only once)."""
    from pydantic import ValidationError

    from retrigger.auth import service as auth_service
    from retrigger.auth.schemas import ApiKeyCreate
    from retrigger.db.session import Database
    from retrigger.errors import RetriggerError

    try:
        key_in = ApiKeyCreate(name=name, team=team, scopes=scope)  # type: ignore[arg-type]
    except ValidationError as exc:
        typer.echo(f"invalid key: {exc}", err=True)
        raise typer.Exit(2) from None

    async def go() -> tuple[str, str]:
        db = Database.from_settings(_settings())
        try:
            async with db.session_scope() as session:
                key, token = await auth_service.create(
                    session, principal=_cli_principal(), key_in=key_in
                )
                return key.key_id, token
        finally:
            await db.dispose()

    try:
        key_id, token = _run(go())
    except RetriggerError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"created key {key_id} ({', '.join(key_in.scopes)}{', team ' + team if team else ''})"
    )
    typer.echo(token)


@keys_app.command("list")
def keys_list(
    include_revoked: Annotated[bool, typer.Option("--include-revoked")] = False,
) -> None:
    """List API keys (never their secrets)."""
    from retrigger.auth import service as auth_service
    from retrigger.db.session import Database

    async def go() -> list[tuple[str, str, str, str, str]]:
        db = Database.from_settings(_settings())
        try:
            async with db.session_scope() as session:
                rows, _ = await auth_service.list_(
                    session,
                    principal=_cli_principal(),
                    include_revoked=include_revoked,
                    after_id=None,
                    limit=10_000,
                )
                return [
                    (
                        r.key_id,
                        r.name,
                        r.team_name or "(org)",
                        ",".join(r.scopes),
                        "revoked" if r.revoked_at else "active",
                    )
                    for r in rows
                ]
        finally:
            await db.dispose()

    for row in _run(go()):
        typer.echo("\t".join(row))


@keys_app.command("revoke")
def keys_revoke(key_id: str, reason: Annotated[str | None, typer.Option()] = None) -> None:
    """Revoke the key with KEY_ID (the 8 characters after `rtk_`)."""
    from retrigger.auth import service as auth_service
    from retrigger.db.session import Database
    from retrigger.errors import RetriggerError

    async def go() -> None:
        db = Database.from_settings(_settings())
        try:
            async with db.session_scope() as session:
                await auth_service.revoke(
                    session, principal=_cli_principal(), key_id=key_id, reason=reason
                )
        finally:
            await db.dispose()

    try:
        _run(go())
    except RetriggerError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"revoked {key_id}")


@signals_app.command("cleanup")
def signals_cleanup() -> None:
    """Delete signals older than their retention (RETRIGGER_RETENTION_*_DAYS); print counts."""
    import retrigger.db.all_models  # noqa: F401  (every mapper, for the product relationships)
    from retrigger.db.session import Database
    from retrigger.db.types import utcnow
    from retrigger.signals.retention import cleanup

    settings = _settings()

    async def go() -> dict[str, int]:
        db = Database.from_settings(settings)
        try:
            async with db.session_scope() as session:
                return await cleanup(session, settings=settings, now=utcnow())
        finally:
            await db.dispose()

    for kind, n in _run(go()).items():
        typer.echo(f"{kind}\t{n}")


@app.command()
def version() -> None:
    """Print the version."""
    from retrigger import __version__

    typer.echo(f"retrigger {__version__} (python {sys.version.split()[0]})")


def main() -> None:
    app()
