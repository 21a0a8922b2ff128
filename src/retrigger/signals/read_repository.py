"""SQL the readers run: windows of samples, outcomes and metric points; active alerts.

``known_by`` (replays only) keeps to what had been stored by then: rows received, outcomes
joined, alert states delivered at or before it. ``None`` leaves the condition out entirely.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from retrigger.products.models import Product
from retrigger.signals.models import Alert, MetricPoint, Outcome, SampleBatch, SampleColumn
from retrigger.signals.repository import chunks, window


def _known(column: Any, known_by: datetime | None) -> list[ColumnElement[bool]]:
    """``column <= known_by``, or no condition at all (live reads)."""
    return [] if known_by is None else [column <= known_by]


class SignalReadRepository:
    """Read queries over the signal tables, on the caller's session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def product_features(self, product_id: int) -> list[dict[str, Any]] | None:
        stmt = select(Product.features).where(Product.id == product_id)
        features = (await self.session.execute(stmt)).scalar_one_or_none()
        return None if features is None else list(features)

    async def metric_points(
        self,
        *,
        product_id: int,
        name: str,
        since: datetime | None,
        until: datetime | None,
        last_rows: int | None,
        known_by: datetime | None = None,
    ) -> Sequence[Any]:
        """(id, event_time, value, model_version, labels) rows in event-time order."""
        cols = (
            MetricPoint.id,
            MetricPoint.event_time,
            MetricPoint.value,
            MetricPoint.model_version,
            MetricPoint.labels,
        )
        stmt = select(*cols).where(
            MetricPoint.product_id == product_id,
            MetricPoint.name == name,
            *window(MetricPoint.event_time, since, until),
            *_known(MetricPoint.received_at, known_by),
        )
        if last_rows is not None:
            stmt = stmt.order_by(MetricPoint.event_time.desc(), MetricPoint.id.desc())
            rows = (await self.session.execute(stmt.limit(last_rows))).all()
            return rows[::-1]
        stmt = stmt.order_by(MetricPoint.event_time, MetricPoint.id)
        return (await self.session.execute(stmt)).all()

    async def sample_batches(
        self,
        *,
        product_id: int,
        since: datetime | None,
        until: datetime | None,
        newest_first: bool,
        limit: int | None = None,
        before: tuple[datetime, int] | None = None,
        known_by: datetime | None = None,
    ) -> Sequence[Any]:
        """(id, event_time, n_rows) of batches in the window, in event-time order.

        ``before`` is a keyset cursor (event_time, id) for paging newest first.
        """
        stmt = select(SampleBatch.id, SampleBatch.event_time, SampleBatch.n_rows).where(
            SampleBatch.product_id == product_id,
            *window(SampleBatch.event_time, since, until),
            *_known(SampleBatch.received_at, known_by),
        )
        if before is not None:
            t, i = before
            stmt = stmt.where(
                (SampleBatch.event_time < t) | and_(SampleBatch.event_time == t, SampleBatch.id < i)
            )
        if newest_first:
            stmt = stmt.order_by(SampleBatch.event_time.desc(), SampleBatch.id.desc())
        else:
            stmt = stmt.order_by(SampleBatch.event_time, SampleBatch.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        return (await self.session.execute(stmt)).all()

    async def batches_by_id(self, *, product_id: int, ids: Sequence[int]) -> list[Any]:
        out: list[Any] = []
        for part in chunks(ids):
            stmt = select(SampleBatch.id, SampleBatch.event_time, SampleBatch.n_rows).where(
                SampleBatch.product_id == product_id, SampleBatch.id.in_(part)
            )
            out.extend((await self.session.execute(stmt)).all())
        return sorted(out, key=lambda r: (r.event_time, r.id))

    async def sample_columns(
        self, *, batch_ids: Sequence[int], features: Sequence[str]
    ) -> list[Any]:
        """(batch_id, feature, kind, data, categories) of only the requested features."""
        out: list[Any] = []
        for part in chunks(batch_ids):
            stmt = select(
                SampleColumn.batch_id,
                SampleColumn.feature,
                SampleColumn.kind,
                SampleColumn.data,
                SampleColumn.categories,
            ).where(SampleColumn.batch_id.in_(part), SampleColumn.feature.in_(features))
            out.extend((await self.session.execute(stmt)).all())
        return out

    async def joined_outcomes(
        self,
        *,
        product_id: int,
        since: datetime | None,
        until: datetime | None,
        last_rows: int | None,
        known_by: datetime | None = None,
    ) -> Sequence[Any]:
        """Outcomes with both prediction and label, in event-time order."""
        stmt = select(
            Outcome.id,
            Outcome.event_time,
            Outcome.prediction,
            Outcome.label,
            Outcome.score,
            Outcome.error,
        ).where(
            Outcome.product_id == product_id,
            Outcome.joined_at.is_not(None),
            *window(Outcome.event_time, since, until),
            *_known(Outcome.joined_at, known_by),
        )
        if last_rows is not None:
            stmt = stmt.order_by(Outcome.event_time.desc(), Outcome.id.desc()).limit(last_rows)
            return (await self.session.execute(stmt)).all()[::-1]
        stmt = stmt.order_by(Outcome.event_time, Outcome.id)
        return (await self.session.execute(stmt)).all()

    async def count_joined(
        self,
        *,
        product_id: int,
        since: datetime | None,
        until: datetime | None,
        known_by: datetime | None = None,
    ) -> int:
        """How many outcomes with both prediction and label fall in the window."""
        stmt = select(func.count(Outcome.id)).where(
            Outcome.product_id == product_id,
            Outcome.joined_at.is_not(None),
            *window(Outcome.event_time, since, until),
            *_known(Outcome.joined_at, known_by),
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def unprocessed_errors(self, *, product_id: int, limit: int) -> Sequence[Any]:
        """(id, error) of joined outcomes no concept-drift detector has seen, oldest first."""
        stmt = (
            select(Outcome.id, Outcome.error)
            .where(
                Outcome.product_id == product_id,
                Outcome.detector_processed.is_(False),
                Outcome.joined_at.is_not(None),
            )
            .order_by(Outcome.id)
            .limit(limit)
            # a second evaluator waits, then skips what the first one consumed
            .with_for_update()
        )
        return (await self.session.execute(stmt)).all()

    async def errors_joined_between(
        self, *, product_id: int, after: datetime | None, until: datetime
    ) -> Sequence[Any]:
        """(id, error) of outcomes whose label joined in ``(after, until]``, in arrival order.

        What a live evaluation at ``until`` would have fed the detectors, when the previous one
        ran at ``after``: the outcomes that joined in between, oldest id first.
        """
        stmt = select(Outcome.id, Outcome.error).where(
            Outcome.product_id == product_id,
            Outcome.joined_at.is_not(None),
            Outcome.joined_at <= until,
        )
        if after is not None:
            stmt = stmt.where(Outcome.joined_at > after)
        return (await self.session.execute(stmt.order_by(Outcome.id))).all()

    async def mark_processed(self, *, product_id: int, ids: Sequence[int]) -> int:
        count = 0
        for part in chunks(ids):
            stmt = (
                update(Outcome)
                .where(
                    Outcome.product_id == product_id,
                    Outcome.id.in_(part),
                    Outcome.detector_processed.is_(False),
                )
                .values(detector_processed=True)
                .execution_options(synchronize_session=False)
            )
            result: Any = await self.session.execute(stmt)
            count += int(result.rowcount or 0)
        return count

    async def active_alerts(
        self, *, product_id: int, at: datetime, known_by: datetime | None = None
    ) -> Sequence[Alert]:
        """Alert rows of occurrences that had started and not ended at ``at``.

        An occurrence is (fingerprint, starts_at). It is over once a resolved state with
        ``ends_at <= at`` is stored, once its own ``ends_at`` passed, or once a newer occurrence
        of the same fingerprint started (its resolution was lost). With ``known_by``, only states
        delivered by then count, on both sides: a resolution delivered later does not end an
        occurrence that was firing as far as anyone knew.
        """
        resolved = aliased(Alert)
        newer = aliased(Alert)
        stmt = (
            select(Alert)
            .where(
                Alert.product_id == product_id,
                Alert.starts_at <= at,
                (Alert.ends_at.is_(None)) | (Alert.ends_at > at),
                *_known(Alert.received_at, known_by),
                ~exists().where(
                    resolved.product_id == Alert.product_id,
                    resolved.fingerprint == Alert.fingerprint,
                    resolved.starts_at == Alert.starts_at,
                    resolved.status == "resolved",
                    resolved.ends_at <= at,
                    *_known(resolved.received_at, known_by),
                ),
                ~exists().where(
                    newer.product_id == Alert.product_id,
                    newer.fingerprint == Alert.fingerprint,
                    newer.starts_at > Alert.starts_at,
                    newer.starts_at <= at,
                    *_known(newer.received_at, known_by),
                ),
            )
            .order_by(Alert.starts_at, Alert.id)
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def alerts_between(
        self, *, product_id: int, since: datetime | None, until: datetime | None
    ) -> Sequence[Alert]:
        stmt = (
            select(Alert)
            .where(Alert.product_id == product_id, *window(Alert.received_at, since, until))
            .order_by(Alert.received_at, Alert.id)
        )
        return (await self.session.execute(stmt)).scalars().all()
