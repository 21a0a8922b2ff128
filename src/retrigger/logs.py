"""Logging setup: text or JSON lines carrying the ids of what is being handled.

The request id (set by the HTTP middleware), product, decision id and run id live in context
variables; ``log_context`` sets them for a block and every log line inside carries them.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretBytes, SecretStr

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
product_var: ContextVar[str | None] = ContextVar("product", default=None)
decision_id_var: ContextVar[int | None] = ContextVar("decision_id", default=None)
run_id_var: ContextVar[int | None] = ContextVar("run_id", default=None)

_CONTEXT: tuple[tuple[str, ContextVar[Any]], ...] = (
    ("request_id", request_id_var),
    ("product", product_var),
    ("decision_id", decision_id_var),
    ("run_id", run_id_var),
)
# short names for the text format, where a line should stay readable in a terminal
_TEXT_NAMES = {
    "request_id": "req",
    "product": "product",
    "decision_id": "decision",
    "run_id": "run",
}
# attributes every LogRecord has; anything else was passed with ``extra=``
_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "context_ids",
    "color_message",  # uvicorn's coloured copy of the message
}
_SECRET_KEY = re.compile(r"passw|passphrase|secret|token|authoriz|api_?key|credential|cookie", re.I)
REDACTED = "[redacted]"


def bind(
    *,
    request_id: str | None = None,
    product: str | None = None,
    decision_id: int | None = None,
    run_id: int | None = None,
) -> None:
    """Add ids to the log context until the enclosing ``log_context`` block ends.

    For ids learned halfway through a block (a decision's id after its insert). ``None`` leaves
    an id as it is.
    """
    given = {
        "request_id": request_id,
        "product": product,
        "decision_id": decision_id,
        "run_id": run_id,
    }
    for name, var in _CONTEXT:
        if given[name] is not None:
            var.set(given[name])


@contextmanager
def log_context(
    *,
    request_id: str | None = None,
    product: str | None = None,
    decision_id: int | None = None,
    run_id: int | None = None,
) -> Iterator[None]:
    """Set ids for the block's log lines; on exit every id is back to its value before it."""
    saved = [(var, var.get()) for _, var in _CONTEXT]
    bind(request_id=request_id, product=product, decision_id=decision_id, run_id=run_id)
    try:
        yield
    finally:
        # set, not reset: ``bind`` inside the block changed values this block did not set
        for var, value in saved:
            var.set(value)


def current_ids() -> dict[str, Any]:
    """The ids set in the current context."""
    return {name: value for name, var in _CONTEXT if (value := var.get()) is not None}


def _safe(key: str, value: Any) -> Any:
    if _SECRET_KEY.search(key):
        return REDACTED
    if isinstance(value, SecretStr | SecretBytes):
        return str(value)  # pydantic masks it
    return value


class _ContextFilter(logging.Filter):
    """Copies the context ids onto each record (formatters may run after the context ends)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.context_ids = current_ids()
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, the context ids, extras, exc."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        out.update(getattr(record, "context_ids", None) or {})
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and key not in out:
                out[key] = _safe(key, value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message [req=… product=… decision=… run=…]``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids: dict[str, Any] = getattr(record, "context_ids", None) or {}
        if not ids:
            return line
        tags = " ".join(f"{_TEXT_NAMES[name]}={value}" for name, value in ids.items())
        head, sep, tail = line.partition("\n")  # keep a traceback below the tagged line
        return f"{head} [{tags}]{sep}{tail}"


def configure(level: str, fmt: str) -> None:
    """Install one stderr handler on the root logger (idempotent)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter())
    handler.setFormatter(JSONFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_retrigger", False):
            root.removeHandler(old)
    handler._retrigger = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    quiet = max(logging.getLevelName(level), logging.WARNING)
    for name in ("uvicorn.access", "alembic.runtime.plugins", "alembic.runtime.migration"):
        logging.getLogger(name).setLevel(quiet)
