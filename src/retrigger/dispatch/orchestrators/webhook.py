"""Webhook adapter: a signed JSON body POSTed to any HTTP endpoint.

The body is a ``retrigger.run.requested`` event, or the connection's ``body_template`` rendered
with the launch context (placeholders as in a policy target's parameters, see
:mod:`retrigger.policies.target`), for receivers with a body shape of their own. Either is signed
per the Standard Webhooks scheme: ``webhook-id`` (the idempotency key, so the receiver dedupes
retries), ``webhook-timestamp`` and ``webhook-signature``. :func:`sign` and :func:`verify` are
public so inbound signed callbacks are checked the same way, with the per-run key of
:func:`run_secret`. Status arrives by callback only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Final

import httpx
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, JsonValue

from retrigger.dispatch.orchestrators.base import (
    AuthType,
    Orchestrator,
    RemoteStatus,
    RetrainRequest,
    RunRef,
    RunState,
    launch_context,
)
from retrigger.errors import InvalidConfig, OrchestratorRejected, Unauthenticated
from retrigger.policies.problems import fail
from retrigger.policies.target import placeholder_problems, render_template

REQUESTED = "retrigger.run.requested"
CANCELLED = "retrigger.run.cancelled"
SECRET_PREFIX = "whsec_"
BODY_PLACEHOLDERS: Final = frozenset(
    {
        "product",
        "run_id",
        "decision_id",
        "idempotency_key",
        "reasons",
        "fired_rules",
        "window_start",
        "window_end",
        "reference_version",
        "model_version",
        "policy_version",
        "parameters",
        "timestamp",
    }
)
"""Placeholders of a ``body_template``, besides ``{parameters.<name>}`` (one parameter)."""
PARAMETER_PREFIX: Final = "parameters."


class InvalidSignature(Unauthenticated):
    """A signed webhook whose headers are missing, stale, or whose signature does not match."""


def _check_body_template(value: JsonValue) -> JsonValue:
    problems = placeholder_problems(value, known=BODY_PLACEHOLDERS, prefixes=(PARAMETER_PREFIX,))
    if problems:
        fail("body_template", problems)
    return value


class WebhookOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cancel_path: str | None = Field(None, pattern=r"^(/([^/].*)?)?$")
    """Path (under the base URL) receiving a signed ``retrigger.run.cancelled`` event; without
    it, cancelling a run tells the receiver nothing."""
    body_template: Annotated[JsonValue, AfterValidator(_check_body_template)] = None
    """The JSON body of a launch, its string values templated (``"{run_id}"``); absent or null:
    the ``retrigger.run.requested`` event. A string that is exactly one placeholder takes the
    value's JSON type; placeholders inside longer strings are replaced by text."""


def _key_bytes(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        return secret.encode()
    try:
        return base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except binascii.Error as exc:
        raise InvalidConfig("a whsec_ webhook secret must be base64 after its prefix") from exc


def run_secret(callback_secret: str, idempotency_key: str) -> str:
    """The key that signs the callbacks of one run: ``whsec_`` + base64 of
    HMAC-SHA256(key of ``callback_secret``, the run's idempotency key).

    A signature made for one run therefore fails on every other run, and the server stores no
    per-run secret: it derives the key again for each callback, as the pipeline does.
    """
    digest = hmac.new(_key_bytes(callback_secret), idempotency_key.encode(), hashlib.sha256)
    return SECRET_PREFIX + base64.b64encode(digest.digest()).decode()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    tolerance_seconds: float = 300,
    *,
    now: float | None = None,
) -> None:
    """Check a Standard Webhooks signature; raise InvalidSignature unless one matches in time."""
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id")
    stamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature")
    if not msg_id or not stamp or not signatures:
        raise InvalidSignature("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        timestamp = int(stamp)
    except ValueError as exc:
        raise InvalidSignature("webhook-timestamp is not unix seconds") from exc
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise InvalidSignature("webhook-timestamp is outside the tolerance (replay?)")
    expected = sign(secret, msg_id, timestamp, body).encode()
    # Several space-separated signatures are allowed (secret rotation); any v1 match will do.
    for candidate in signatures.split():
        if candidate.startswith("v1,") and hmac.compare_digest(candidate.encode(), expected):
            return
    raise InvalidSignature("no webhook-signature matches")


class WebhookOrchestrator(Orchestrator):
    kind = "webhook"
    options_model = WebhookOptions
    auth_types = frozenset({AuthType.WEBHOOK_SECRET, AuthType.BEARER})
    reports_status = False

    @property
    def options(self) -> WebhookOptions:
        assert isinstance(self.connection.options, WebhookOptions)
        return self.connection.options

    async def submit(self, request: RetrainRequest) -> RunRef:
        key = request.idempotency_key
        path = _path(request.pipeline)
        now = time.time()
        template = self.options.body_template
        if template is None:
            data = {
                **launch_context(request),
                "idempotency_key": key,
                "pipeline": request.pipeline,
                "parameters": dict(request.parameters),
            }
            body = _event(REQUESTED, data, now)
        else:
            body = _encode(render_template(template, _body_values(request, _iso(now))))
        response = await self._send(path, key, body, now)
        ref_data = {"idempotency_key": key, "product": request.product, "run_id": request.run_id}
        return RunRef(external_id=_answered_id(response) or key, url=None, data=ref_data)

    async def get_status(self, ref: RunRef) -> RemoteStatus:
        return RemoteStatus(RunState.RUNNING, "waiting for callback")

    async def cancel(self, ref: RunRef) -> None:
        if self.options.cancel_path is None:
            return
        key = str(ref.data.get("idempotency_key", ref.external_id))
        data = {**ref.data, "idempotency_key": key, "external_id": ref.external_id}
        # 404/409/410: the receiver no longer knows the run or it already ended.
        now = time.time()
        await self._send(
            self.options.cancel_path,
            f"{key}-cancelled",
            _event(CANCELLED, data, now),
            now,
            allow=(404, 409, 410),
        )

    async def _send(
        self, path: str, msg_id: str, body: bytes, now: float, allow: tuple[int, ...] = ()
    ) -> httpx.Response | None:
        """POST ``body`` signed as sent at ``now`` (a template's ``{timestamp}`` is that time)."""
        headers = {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now)),
        }
        if self.connection.auth is AuthType.WEBHOOK_SECRET:
            if self.connection.secret is None:
                raise OrchestratorRejected("webhook: the connection has no signing secret")
            secret = self.connection.secret.get_secret_value()
            try:
                headers["webhook-signature"] = sign(secret, msg_id, int(now), body)
            except InvalidConfig as exc:
                raise OrchestratorRejected(f"webhook: {exc.message}") from exc
        # httpx would add a trailing slash to the base URL for an empty path; some receivers 404.
        url = path or self.connection.base_url
        response = await self.request("POST", url, content=body, headers=headers, allow=allow)
        if response.status_code in allow:
            return None
        if not 200 <= response.status_code < 300:
            raise OrchestratorRejected(
                f"webhook: POST {path or '/'} answered {response.status_code}, not 2xx"
            )
        return response


def _iso(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z")


def _encode(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def _event(event: str, data: Mapping[str, Any], now: float) -> bytes:
    return _encode({"type": event, "timestamp": _iso(now), "data": data})


def _body_values(request: RetrainRequest, timestamp: str) -> Callable[[str], Any]:
    """The placeholder values of a ``body_template``: the launch context (a field the run's
    context lacks is null), the rendered parameters one by one or together, the send time."""
    context = launch_context(request)
    parameters = dict(request.parameters)
    values = {name: context.get(name) for name in BODY_PLACEHOLDERS}
    values.update(
        idempotency_key=request.idempotency_key, parameters=parameters, timestamp=timestamp
    )

    def lookup(name: str) -> Any:
        if name.startswith(PARAMETER_PREFIX):
            parameter = name.removeprefix(PARAMETER_PREFIX)
            if parameter not in parameters:
                given = ", ".join(sorted(parameters)) or "none"
                raise OrchestratorRejected(
                    f"webhook: body_template uses {{{name}}} but the run has no parameter "
                    f"{parameter!r} (its parameters: {given}); nothing sent"
                )
            return parameters[parameter]
        if name not in values:  # the options were validated: only a code change gets here
            raise OrchestratorRejected(f"webhook: body_template placeholder {{{name}}} is unknown")
        return values[name]

    return lookup


def _path(pipeline: str) -> str:
    """The pipeline as a path under the base URL; never another host (the secret would leak)."""
    if pipeline and (not pipeline.startswith("/") or pipeline.startswith("//")):
        raise OrchestratorRejected(f"webhook: pipeline {pipeline!r} is not a path like /hooks/x")
    return pipeline


def _answered_id(response: httpx.Response | None) -> str | None:
    """The receiver's own id for the run (``id`` or ``run_id`` of a JSON answer), if any."""
    if response is None:
        return None
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None  # receivers often answer plain text or nothing; the key then names the run
    if not isinstance(body, dict):
        return None
    for name in ("id", "run_id"):
        value = body.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            return str(value)
    return None
