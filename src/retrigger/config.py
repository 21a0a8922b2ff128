"""Settings: every knob of retrigger, read from ``RETRIGGER_*`` environment variables or ``.env``.

The variable names are flat (``RETRIGGER_DATABASE_URL``, ``RETRIGGER_AUTH``...) because they are
what operators type; fields are grouped by prefix instead of nested models. This is the only module
that reads the environment.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./retrigger.db"


class AuthMode(StrEnum):
    enabled = "enabled"
    disabled = "disabled"


class LogFormat(StrEnum):
    text = "text"
    json = "json"


class Settings(BaseSettings):
    """Runtime configuration. Each field is documented in the README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix="RETRIGGER_",
        env_file=".env",
        extra="ignore",
        validate_default=True,
        hide_input_in_errors=True,  # a refused value may be (part of) a secret
    )

    # database
    database_url: str = Field(
        DEFAULT_DATABASE_URL,
        description="SQLAlchemy async URL: sqlite+aiosqlite:///path.db or "
        "postgresql+asyncpg://user:pass@host/db.",
    )
    database_pool_size: int = Field(10, ge=1, le=200, description="Connections kept per process.")
    database_max_overflow: int = Field(10, ge=0, le=200, description="Extra connections allowed.")
    database_pool_timeout: float = Field(
        30.0, gt=0, description="Seconds to wait for a free pooled connection."
    )
    database_echo: bool = Field(False, description="Log every SQL statement (debugging only).")
    database_pool_pre_ping: bool = Field(
        True,
        description="Check a pooled PostgreSQL connection before each use (one round trip): "
        "survives database restarts; turn off for the last bit of ingestion throughput.",
    )
    sqlite_busy_timeout_ms: int = Field(
        5000, ge=0, description="How long SQLite waits on a locked database before failing."
    )
    auto_migrate: bool | None = Field(
        None,
        description="Apply migrations at start. Default: yes on SQLite, no on PostgreSQL "
        "(there `retrigger db upgrade` is a deliberate deploy step).",
    )

    # HTTP
    host: str = Field("127.0.0.1", description="Interface `retrigger serve` binds.")
    port: int = Field(8000, ge=1, le=65535, description="Port `retrigger serve` binds.")
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes.")
    max_body_bytes: int = Field(
        10 * 1024 * 1024,
        ge=1024,
        description="Largest request body accepted; larger ones get 413 before they are read.",
    )

    # auth
    auth: AuthMode = Field(
        AuthMode.enabled, description="`enabled` (API keys required) or `disabled` (local only)."
    )
    bootstrap_admin_token: SecretStr | None = Field(
        None,
        description="Org admin key to create on first start instead of a random one "
        "(must look like rtk_<8 chars>_<at least 32 chars>).",
    )

    # signals
    alert_product_label: str = Field(
        "product",
        min_length=1,
        max_length=100,
        description="Alert label naming the product an Alertmanager/Grafana alert is about; "
        "a receiver can override it with `?product_label=`.",
    )
    signals_max_future_seconds: float = Field(
        300.0,
        ge=0,
        le=86_400,
        description="How far in the future a signal's event time may lie (clock skew allowance).",
    )
    retention_metrics_days: int = Field(
        90, ge=0, description="Keep metric points this many days (by event time); 0 = forever."
    )
    retention_samples_days: int = Field(
        30,
        ge=0,
        description="Keep feature sample batches this many days (by event time); 0 = forever.",
    )
    retention_outcomes_days: int = Field(
        180,
        ge=0,
        description="Keep prediction/label outcomes this many days (by event time); 0 = forever.",
    )
    retention_alerts_days: int = Field(
        90, ge=0, description="Keep ended alerts this many days (by receive time); 0 = forever."
    )
    retention_idempotency_days: int = Field(
        2, ge=0, description="Remember ingestion idempotency keys this many days; 0 = forever."
    )

    # evaluation
    evaluation_debounce_seconds: float = Field(
        5.0,
        ge=0,
        le=3600,
        description="After signals arrive, wait this long for more before evaluating the product.",
    )
    evaluation_max_delay_seconds: float = Field(
        60.0,
        gt=0,
        le=86_400,
        description="Evaluate a product at the latest this long after the first signal of a "
        "burst, even while batches keep arriving (never sooner than the debounce). The "
        "scheduler also evaluates any product whose signals have waited this long, so an "
        "evaluation lost to a restart, or ingested by another process, still happens.",
    )
    scheduler_interval_seconds: float = Field(
        60.0,
        ge=0,
        description="How often the periodic scheduler runs: products with staleness or "
        "schedule rules are evaluated, and products whose signals have waited "
        "`evaluation_max_delay_seconds` (0 disables the periodic scheduler).",
    )
    background_evaluation: bool = Field(
        True,
        description="Run background work inside `retrigger serve`: debounced evaluations after "
        "ingestion and, with `embedded_worker`, the scheduler, dispatcher and run poller. "
        "`false` leaves all of it to `retrigger worker` processes: their scheduler evaluates "
        "products whose signals have waited `evaluation_max_delay_seconds` (ingestion marks "
        "them in the database), so evaluations after ingestion come later, not never.",
    )

    # dispatch
    embedded_worker: bool = Field(
        True,
        description="Run the dispatcher, run-status poller and periodic scheduler inside "
        "`retrigger serve`; turn off when separate `retrigger worker` processes run them.",
    )
    dispatch_interval_seconds: float = Field(
        2.0, gt=0, le=3600, description="How often the dispatcher looks for pending runs."
    )
    dispatch_batch_size: int = Field(
        10, ge=1, le=1000, description="Pending runs one dispatcher claims per pass."
    )
    dispatch_max_attempts: int = Field(
        8, ge=1, le=100, description="Submission attempts before a run fails with the last error."
    )
    dispatch_backoff_base_seconds: float = Field(
        1.0, gt=0, le=3600, description="First retry delay; doubles per attempt, with jitter."
    )
    dispatch_backoff_max_seconds: float = Field(
        300.0, gt=0, le=86_400, description="Longest delay between two submission attempts."
    )
    dispatch_lease_seconds: float = Field(
        120.0,
        gt=0,
        le=86_400,
        description="A claimed run is picked up again by another dispatcher after this long "
        "if its claimer died; keep it above the longest orchestrator call.",
    )
    status_poll_interval_seconds: float = Field(
        15.0, gt=0, le=86_400, description="How often each active run's status is polled."
    )
    status_poll_max_failures: int = Field(
        5,
        ge=1,
        le=1000,
        description="Status polls in a row the orchestrator refuses (e.g. 404: the run was "
        "deleted there) before the run fails with the last error; an unreachable orchestrator "
        "does not count.",
    )
    run_max_duration: float = Field(
        2 * 86_400.0,
        ge=0,
        description="A submitted or running run still without a final state this long after its "
        "submission fails, and its pipeline is asked to stop: a duration (`2d`, `36h`) or "
        "seconds; 0 = never.",
    )
    approval_timeout: float = Field(
        7 * 86_400.0,
        ge=0,
        description="A run awaiting approval this long is rejected by `system`: a duration "
        "(`7d`) or seconds; 0 = never.",
    )

    @field_validator("run_max_duration", "approval_timeout", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        # written like policy durations ("2d", "36h"); a plain number is seconds
        if not isinstance(value, str):
            return value
        try:
            return float(value)
        except ValueError:
            from retrigger.policies.durations import parse_duration

            return parse_duration(value).total_seconds()

    run_key_prefix: str = Field(
        "retrigger",
        pattern=r"^[a-z0-9][a-z0-9-]{0,30}$",
        description="Prefix of run idempotency keys (`<prefix>-run-<id>-<6 hex>`); give each "
        "installation sharing an orchestrator its own.",
    )
    callback_secret: SecretStr | None = Field(
        None,
        description="Secret (`whsec_<base64>` or raw, at least 16 bytes) from which each run's "
        "callback signing key is derived (HMAC-SHA256 of the run's idempotency key, see "
        "docs/runs.md); without it callbacks need a `write` API key.",
    )

    @model_validator(mode="after")
    def _callback_secret(self) -> Settings:
        # checked at start so a bad value stops the process, not every callback later; a model
        # validator, so the error shows the settings with the secret masked, never the value
        if self.callback_secret is None:
            return self
        import base64
        import binascii

        raw = self.callback_secret.get_secret_value()
        key = raw.encode()
        if raw.startswith("whsec_"):
            try:
                key = base64.b64decode(raw.removeprefix("whsec_"), validate=True)
            except binascii.Error:
                msg = "callback_secret: a whsec_ value must be base64 after the prefix"
                raise ValueError(msg) from None
        if len(key) < 16:
            raise ValueError("callback_secret must hold at least 16 bytes of key")
        return self

    secret_env_allow: str = Field(
        "*",
        description="Comma-separated glob patterns of the environment variables a connection's "
        "`env:NAME` secret reference may name (`AIRFLOW_*,PREFECT_API_KEY`); `RETRIGGER_*` is "
        "always refused. Default: every other variable.",
    )
    secret_file_dirs: str = Field(
        "",
        description="Comma-separated absolute directories a `file:/path` secret reference must "
        "lie under (`/run/secrets`). Empty: any absolute path except under /proc, /sys and /dev "
        "and the server's own database and .env files (always refused).",
    )

    @field_validator("secret_env_allow")
    @classmethod
    def _env_patterns(cls, value: str) -> str:
        import re

        items = [item.strip() for item in value.split(",") if item.strip()]
        for item in items:
            if not re.fullmatch(r"[A-Za-z0-9_*?]+", item):
                raise ValueError(f"secret_env_allow: {item!r} is not a variable name pattern")
        return ",".join(items)

    @field_validator("secret_file_dirs")
    @classmethod
    def _file_dirs(cls, value: str) -> str:
        items = [item.strip().rstrip("/") or "/" for item in value.split(",") if item.strip()]
        for item in items:
            if not item.startswith("/"):
                raise ValueError(f"secret_file_dirs: {item!r} is not an absolute directory")
        return ",".join(items)

    @property
    def secret_env_patterns(self) -> tuple[str, ...]:
        return tuple(p for p in self.secret_env_allow.split(",") if p)

    @property
    def secret_file_roots(self) -> tuple[str, ...]:
        return tuple(d for d in self.secret_file_dirs.split(",") if d)

    # logging
    state_gauges_interval_seconds: float = Field(
        15.0,
        gt=0,
        le=3600,
        description="How often every process re-reads the database-backed gauges (runs by "
        "state, model age, the last evaluation's drift and budget) for /metrics.",
    )
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_format: LogFormat = Field(LogFormat.text, description="`text` or `json` lines.")

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("log_level must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return level

    @field_validator("database_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if value.startswith("postgresql://") or value.startswith("postgres://"):
            # operators paste libpq URLs; the async driver is the only one we ship
            value = "postgresql+asyncpg://" + value.split("://", 1)[1]
        if not (
            value.startswith("sqlite+aiosqlite://") or value.startswith("postgresql+asyncpg://")
        ):
            raise ValueError(
                "database_url must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
            )
        return value

    @model_validator(mode="after")
    def _token_shape(self) -> Settings:
        token = self.bootstrap_admin_token
        if token is not None:
            from retrigger.auth.tokens import parse_token

            if parse_token(token.get_secret_value()) is None:
                raise ValueError(
                    "bootstrap_admin_token must look like rtk_<8 lowercase chars>_<32+ chars>"
                )
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def should_auto_migrate(self) -> bool:
        return self.is_sqlite if self.auto_migrate is None else self.auto_migrate


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
