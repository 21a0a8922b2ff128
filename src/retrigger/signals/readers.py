"""What the evaluation reads: feature columns, outcomes, metric series and active alerts.

Windows are by event time, ``since <= t < until`` (either bound optional), optionally cut to the
newest ``last_rows``. Replays (backtests) also pass ``known_by``, the step's time: they then read
only what had been stored by then (received, or for outcomes joined, at or before it), so late
data does not leak into the past; live reads leave it None. Every read describes exactly what it
read (bounds, counts, batch ids, a digest) so a decision can record it and be reproduced later,
even after late data arrived:
``read_columns(..., batch_ids=window.batch_ids)`` reads the same rows again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.errors import InvalidConfig
from retrigger.products.schemas import FeatureKind
from retrigger.signals import joining
from retrigger.signals.columns import FeatureColumn, StoredColumn, concat
from retrigger.signals.models import Alert
from retrigger.signals.read_repository import SignalReadRepository

__all__ = [
    "FeatureColumn",
    "MetricSeries",
    "OutcomeArrays",
    "SampleColumns",
    "SampleWindow",
    "active_alerts",
    "count_labelled",
    "alerts_between",
    "errors_joined_between",
    "mark_detector_processed",
    "read_columns",
    "read_metric",
    "read_outcomes",
    "unprocessed_errors",
]

_PAGE = 2000


def _bounds_json(
    since: datetime | None, until: datetime | None, last_rows: int | None
) -> dict[str, Any]:
    return {
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "last_rows": last_rows,
    }


def _event_times_json(first: datetime | None, last: datetime | None) -> dict[str, Any]:
    return {
        "first_event_time": first.isoformat() if first else None,
        "last_event_time": last.isoformat() if last else None,
    }


def _with_known_by(known_by: datetime | None, described: dict[str, Any]) -> dict[str, Any]:
    """A read's description, plus its ``known_by`` bound when it had one (replays only)."""
    if known_by is not None:
        described["known_by"] = known_by.isoformat()
    return described


def _digest(parts: Sequence[Any]) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(repr(part).encode())
        h.update(b"\x00")
    return h.hexdigest()


@dataclass(frozen=True)
class SampleWindow:
    """Exactly which sample rows a read returned."""

    since: datetime | None
    until: datetime | None
    last_rows: int | None
    n_rows: int
    first_event_time: datetime | None
    last_event_time: datetime | None
    batch_ids: tuple[int, ...]
    skipped_rows: int = 0
    """Leading rows of the oldest batch left out to honour ``last_rows``."""
    digest: str = ""
    known_by: datetime | None = None
    """Replays: only batches received by then were read."""

    def as_json(self) -> dict[str, Any]:
        """JSON-safe description, to store with a decision."""
        return _with_known_by(
            self.known_by,
            {
                **_bounds_json(self.since, self.until, self.last_rows),
                "n_rows": self.n_rows,
                **_event_times_json(self.first_event_time, self.last_event_time),
                "n_batches": len(self.batch_ids),
                "batch_ids": list(self.batch_ids),
                "skipped_rows": self.skipped_rows,
                "digest": self.digest,
            },
        )


class SampleColumns(dict[str, FeatureColumn]):
    """Feature name -> column, all of one length, plus the ``window`` they came from."""

    def __init__(self, columns: dict[str, FeatureColumn], window: SampleWindow) -> None:
        super().__init__(columns)
        self.window = window


async def _select_batches(
    repo: SignalReadRepository,
    *,
    product_id: int,
    since: datetime | None,
    until: datetime | None,
    last_rows: int | None,
    batch_ids: Sequence[int] | None,
    known_by: datetime | None,
) -> tuple[list[Any], int]:
    """Batches to read, oldest first, and how many leading rows of the first to skip."""
    if batch_ids is not None:
        return await repo.batches_by_id(product_id=product_id, ids=batch_ids), 0
    if last_rows is None:
        return list(
            await repo.sample_batches(
                product_id=product_id,
                since=since,
                until=until,
                newest_first=False,
                known_by=known_by,
            )
        ), 0
    picked: list[Any] = []
    total = 0
    cursor: tuple[datetime, int] | None = None
    while total < last_rows:
        page = await repo.sample_batches(
            product_id=product_id,
            since=since,
            until=until,
            newest_first=True,
            limit=_PAGE,
            before=cursor,
            known_by=known_by,
        )
        for row in page:
            picked.append(row)
            total += row.n_rows
            if total >= last_rows:
                break
        if len(page) < _PAGE:
            break
        cursor = (page[-1].event_time, page[-1].id)
    picked.reverse()
    return picked, max(total - last_rows, 0)


async def read_columns(
    session: AsyncSession,
    *,
    product_id: int,
    features: Sequence[str],
    since: datetime | None,
    until: datetime | None,
    last_rows: int | None,
    batch_ids: Sequence[int] | None = None,
    known_by: datetime | None = None,
) -> SampleColumns:
    """Columns of the requested features over a window; reads no other feature's data.

    Rows are in event-time order (batch by batch; a batch's rows keep the order they were
    sent in). ``result.window`` says which batches and rows were read. With ``batch_ids``,
    exactly those batches are read (to reproduce an earlier read) and the bounds are ignored.
    With ``known_by``, only batches received by then are read.
    """
    if last_rows is not None and last_rows < 1:
        raise InvalidConfig("last_rows must be at least 1")
    repo = SignalReadRepository(session)
    batches, skip = await _select_batches(
        repo,
        product_id=product_id,
        since=since,
        until=until,
        last_rows=last_rows,
        batch_ids=batch_ids,
        known_by=None if batch_ids is not None else known_by,
    )
    ids = [b.id for b in batches]
    wanted = list(dict.fromkeys(features))
    stored: dict[str, dict[int, StoredColumn]] = {name: {} for name in wanted}
    if ids and wanted:
        for row in await repo.sample_columns(batch_ids=ids, features=wanted):
            stored[row.feature][row.batch_id] = StoredColumn(row.kind, row.data, row.categories)
    schema = {f["name"]: f for f in (await repo.product_features(product_id)) or []}
    out: dict[str, FeatureColumn] = {}
    for name in wanted:
        kind = _kind_of(name, schema, stored[name])
        parts = [
            (b.n_rows, skip if i == 0 else 0, stored[name].get(b.id)) for i, b in enumerate(batches)
        ]
        out[name] = concat(name, kind, parts)
    n_rows = sum(b.n_rows for b in batches) - skip
    window = SampleWindow(
        since=since,
        until=until,
        last_rows=last_rows,
        n_rows=n_rows,
        first_event_time=batches[0].event_time if batches else None,
        last_event_time=batches[-1].event_time if batches else None,
        batch_ids=tuple(ids),
        skipped_rows=skip,
        digest=_digest([(b.id, b.n_rows) for b in batches] + [skip]),
        known_by=None if batch_ids is not None else known_by,
    )
    return SampleColumns(out, window)


def _kind_of(
    name: str, schema: dict[str, dict[str, Any]], stored: dict[int, StoredColumn]
) -> FeatureKind:
    if name in schema:
        return FeatureKind(schema[name]["kind"])
    for column in stored.values():
        return FeatureKind(column.kind)
    raise InvalidConfig(
        f"feature '{name}' is neither in the product's schema nor in its stored samples"
    )


@dataclass(frozen=True, eq=False)
class OutcomeArrays:
    """Joined outcomes (prediction and label both known) of a window, in event-time order.

    ``predictions`` and ``labels`` are float64 when every value is a number, else object arrays
    of the values as sent. ``scores`` and ``errors`` are float64 with NaN where absent.
    """

    ids: npt.NDArray[np.int64]
    predictions: npt.NDArray[Any]
    labels: npt.NDArray[Any]
    scores: npt.NDArray[np.float64]
    errors: npt.NDArray[np.float64]
    first_event_time: datetime | None
    last_event_time: datetime | None
    since: datetime | None = None
    until: datetime | None = None
    last_rows: int | None = None
    digest: str = field(default="")
    known_by: datetime | None = None
    """Replays: only outcomes joined by then were read."""

    @property
    def n(self) -> int:
        """Number of joined outcomes read."""
        return int(self.ids.shape[0])

    def window_json(self) -> dict[str, Any]:
        """JSON-safe description of what was read, to store with a decision."""
        return _with_known_by(
            self.known_by,
            {
                **_bounds_json(self.since, self.until, self.last_rows),
                "n": self.n,
                **_event_times_json(self.first_event_time, self.last_event_time),
                "min_id": int(self.ids.min()) if self.n else None,
                "max_id": int(self.ids.max()) if self.n else None,
                "digest": self.digest,
            },
        )


def _values(items: list[Any]) -> npt.NDArray[Any]:
    if all(joining.is_number(v) for v in items):
        return np.array(items, dtype=np.float64)
    return np.array(items, dtype=object)


def _floats(items: list[Any]) -> npt.NDArray[np.float64]:
    return np.array([np.nan if v is None else v for v in items], dtype=np.float64)


async def read_outcomes(
    session: AsyncSession,
    *,
    product_id: int,
    since: datetime | None,
    until: datetime | None,
    last_rows: int | None,
    known_by: datetime | None = None,
) -> OutcomeArrays:
    """Joined outcomes for performance metrics: predictions, labels, scores and errors.

    With ``known_by``, only outcomes whose label had joined by then.
    """
    rows = await SignalReadRepository(session).joined_outcomes(
        product_id=product_id, since=since, until=until, last_rows=last_rows, known_by=known_by
    )
    ids = np.array([r.id for r in rows], dtype=np.int64)
    return OutcomeArrays(
        ids=ids,
        predictions=_values([r.prediction for r in rows]),
        labels=_values([r.label for r in rows]),
        scores=_floats([r.score for r in rows]),
        errors=_floats([r.error for r in rows]),
        first_event_time=rows[0].event_time if rows else None,
        last_event_time=rows[-1].event_time if rows else None,
        since=since,
        until=until,
        last_rows=last_rows,
        digest=_digest([(r.id, r.error) for r in rows]),
        known_by=known_by,
    )


async def count_labelled(
    session: AsyncSession,
    *,
    product_id: int,
    since: datetime | None,
    until: datetime | None,
    known_by: datetime | None = None,
) -> int:
    """How many joined outcomes (prediction and label) have event times in the window.

    With ``known_by``, only those whose label had joined by then.
    """
    return await SignalReadRepository(session).count_joined(
        product_id=product_id, since=since, until=until, known_by=known_by
    )


@dataclass(frozen=True, eq=False)
class MetricSeries:
    """Points of one metric in event-time order; times as UTC ``datetime64[us]``."""

    name: str
    event_times: npt.NDArray[np.datetime64]
    values: npt.NDArray[np.float64]
    model_versions: tuple[str | None, ...]
    labels: tuple[dict[str, str] | None, ...]

    @property
    def n(self) -> int:
        return int(self.values.shape[0])


async def read_metric(
    session: AsyncSession,
    *,
    product_id: int,
    name: str,
    since: datetime | None,
    until: datetime | None,
    last_rows: int | None,
    known_by: datetime | None = None,
) -> MetricSeries:
    """The points of one named metric over a window (with ``known_by``: received by then)."""
    rows = await SignalReadRepository(session).metric_points(
        product_id=product_id,
        name=name,
        since=since,
        until=until,
        last_rows=last_rows,
        known_by=known_by,
    )
    times = np.array([r.event_time.replace(tzinfo=None) for r in rows], dtype="datetime64[us]")
    return MetricSeries(
        name=name,
        event_times=times,
        values=np.array([r.value for r in rows], dtype=np.float64),
        model_versions=tuple(r.model_version for r in rows),
        labels=tuple(r.labels for r in rows),
    )


async def active_alerts(
    session: AsyncSession, *, product_id: int, at: datetime, known_by: datetime | None = None
) -> list[Alert]:
    """Alerts firing at ``at``: per fingerprint, the occurrence that had started and not ended.

    With ``known_by``, as the states delivered by then told it.
    """
    rows = await SignalReadRepository(session).active_alerts(
        product_id=product_id, at=at, known_by=known_by
    )
    chosen: dict[str, Alert] = {}
    for alert in rows:  # a firing state beats a later-stored resolution that ends after ``at``
        current = chosen.get(alert.fingerprint)
        if current is None or (current.status != "firing" and alert.status == "firing"):
            chosen[alert.fingerprint] = alert
    return list(chosen.values())


async def alerts_between(
    session: AsyncSession, *, product_id: int, since: datetime | None, until: datetime | None
) -> list[Alert]:
    """Every alert state received in ``[since, until)``, oldest first (e.g. recent resolutions)."""
    return list(
        await SignalReadRepository(session).alerts_between(
            product_id=product_id, since=since, until=until
        )
    )


async def unprocessed_errors(
    session: AsyncSession, *, product_id: int, limit: int = 100_000
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """(ids, errors) of joined outcomes no concept-drift detector consumed yet, oldest first."""
    repo = SignalReadRepository(session)
    rows = await repo.unprocessed_errors(product_id=product_id, limit=limit)
    return (
        np.array([r.id for r in rows], dtype=np.int64),
        _floats([r.error for r in rows]),
    )


async def errors_joined_between(
    session: AsyncSession, *, product_id: int, after: datetime | None, until: datetime
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """(ids, errors) of outcomes whose label joined in ``(after, until]``, oldest id first.

    A replay's stand-in for ``unprocessed_errors``: what detectors evaluated at ``until`` would
    have been fed had the previous evaluation run at ``after``.
    """
    rows = await SignalReadRepository(session).errors_joined_between(
        product_id=product_id, after=after, until=until
    )
    return (
        np.array([r.id for r in rows], dtype=np.int64),
        _floats([r.error for r in rows]),
    )


async def mark_detector_processed(
    session: AsyncSession, *, product_id: int, ids: Sequence[int] | npt.NDArray[np.int64]
) -> int:
    """Flag outcomes as consumed by the detectors (in the caller's transaction); returns count."""
    return await SignalReadRepository(session).mark_processed(
        product_id=product_id, ids=[int(i) for i in ids]
    )
