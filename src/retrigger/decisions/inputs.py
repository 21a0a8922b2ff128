"""Reading what each rule needs: turn a policy's windows into reads of the stored signals.

Every read is described in ``InputsMeta`` (window bounds, row counts, batch ids, digests, the
reference version), which the decision stores so it can be explained and reproduced.

Replays (backtests) read history by event time (backfilled history counts), or, with
``as_known``, as it was known at each step: only signals stored by then (``known_by``),
detectors fed with the labels that joined since the previous step, and the reference that was
active then.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.decisions.state import StateView
from retrigger.evaluation import (
    AlertInput,
    AlertView,
    ConceptDriftInput,
    DataDriftInput,
    MetricSeries,
    OutcomeWindow,
    PerformanceInput,
    RuleInput,
    ScheduleInput,
    StalenessInput,
)
from retrigger.policies.durations import CountWindow, TimeWindow, WindowSpec
from retrigger.policies.rules import (
    AlertRule,
    ConceptDriftRule,
    DataDriftRule,
    Metric,
    PerformanceRule,
    ScheduleRule,
    StalenessRule,
)
from retrigger.policies.schemas import PolicyBody
from retrigger.products.models import Product
from retrigger.products.schemas import FeatureKind
from retrigger.references import service as reference_service
from retrigger.references.models import Reference
from retrigger.signals import readers
from retrigger.signals.columns import FeatureColumn

BUILTIN_METRICS = frozenset(m.value for m in Metric)


@dataclass
class InputsMeta:
    """What the evaluation read, for the decision record."""

    product_id: int
    reference_version: int | None = None
    windows: dict[str, Any] = field(default_factory=dict)
    new_labelled_samples: int | None = None
    consumed_ids: npt.NDArray[np.int64] | None = None
    detector_configs: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "reference_version": self.reference_version,
            "windows": self.windows,
            "new_labelled_samples": self.new_labelled_samples,
            "outcomes_consumed_by_detectors": 0
            if self.consumed_ids is None
            else int(self.consumed_ids.size),
        }


def window_bounds(
    window: WindowSpec, *, now: datetime, state: StateView
) -> tuple[datetime | None, datetime, int | None]:
    """(since, until, last_rows) of a window at ``now``."""
    if isinstance(window, TimeWindow):
        return now - window.duration, now, None
    if isinstance(window, CountWindow):
        return None, now, window.count
    return state.last_retrain_at, now, None  # since_retrain


def detector_config(rule: ConceptDriftRule) -> str:
    """A digest of the detector and its parameters: a changed rule restarts its detector."""
    params = rule.params.model_dump(mode="json") if rule.params is not None else {}
    text = json.dumps({"detector": str(rule.detector), "params": params}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _drift_values(column: FeatureColumn) -> npt.NDArray[Any]:
    """Values as the statistics expect them: floats with NaN, or labels with None."""
    if column.kind is FeatureKind.numeric:
        return column.values
    if column.kind is FeatureKind.boolean:
        out = np.empty(column.values.shape[0], dtype=object)
        missing = np.isnan(column.values)
        out[~missing] = column.values[~missing] > 0.5
        out[missing] = None
        return out
    labels = np.array([*column.categories, None], dtype=object)
    return labels[np.where(column.values >= 0, column.values, len(column.categories))]


class _Reader:
    """Reads shared by several rules of one evaluation are done once.

    In an ``as_known`` replay every read is bounded by ``known_by`` (the step's time), so what
    arrived later, however old its event time, stays out; live reads have no such bound.
    """

    def __init__(
        self,
        session: AsyncSession,
        product: Product,
        state: StateView,
        now: datetime,
        replay_since: datetime | None,
        replay: bool,
        as_known: bool = False,
    ) -> None:
        self.replay = replay
        self.session = session
        self.product = product
        self.state = state
        self.now = now
        self.replay_since = replay_since
        self.as_known = replay and as_known
        self.known_by = now if self.as_known else None
        self.meta = InputsMeta(product_id=product.id)
        self._references: dict[int | str, Reference | None] = {}
        self._errors: tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] | None = None
        self._alerts: list[AlertView] | None = None

    async def reference(self, selector: int | str) -> Reference | None:
        """A pinned version, or the active reference: in a replay, the one active at the step."""
        if selector not in self._references:
            if selector == "active" and self.as_known:
                found = await reference_service.active_at(
                    self.session, product_id=self.product.id, at=self.now
                )
            else:
                version = None if selector == "active" else int(selector)
                found = await reference_service.select(
                    self.session, product_id=self.product.id, version=version
                )
            self._references[selector] = found
        return self._references[selector]

    async def performance(self, rule: PerformanceRule) -> PerformanceInput:
        since, until, last = window_bounds(rule.window, now=self.now, state=self.state)
        outcomes = None
        if rule.metric in BUILTIN_METRICS:
            read = await readers.read_outcomes(
                self.session,
                product_id=self.product.id,
                since=since,
                until=until,
                last_rows=last,
                known_by=self.known_by,
            )
            if read.n:
                outcomes = OutcomeWindow(
                    predictions=read.predictions,
                    labels=read.labels,
                    scores=read.scores,
                    start=read.first_event_time,
                    end=read.last_event_time,
                )
            self.meta.windows[rule.id] = read.window_json()
        series = await readers.read_metric(
            self.session,
            product_id=self.product.id,
            name=rule.metric,
            since=since,
            until=until,
            last_rows=last,
            known_by=self.known_by,
        )
        points = None
        if series.n:
            times = [t.astype("datetime64[us]").item() for t in series.event_times]
            points = MetricSeries(values=series.values, times=times)
            self.meta.windows.setdefault(rule.id, {"metric_points": series.n})
        reference = await self.reference("active")
        baseline = None
        if reference is not None:
            value = reference.baseline_metrics.get(rule.metric)
            baseline = float(value) if value is not None else None
        history = self.state.history.get(rule.id, [])
        return PerformanceInput(
            outcomes=outcomes, metric_points=points, baseline=baseline, history=history
        )

    async def data_drift(self, rule: DataDriftRule) -> DataDriftInput:
        reference = await self.reference(rule.reference)
        schema = {f["name"]: f for f in self.product.features}
        names = list(schema) if rule.features == "*" else list(rule.features)
        weights = {n: float(schema[n].get("importance", 1.0)) for n in names if n in schema}
        if reference is None:
            self.meta.windows[rule.id] = {"reference": None}
            return DataDriftInput(reference_version=None, profiles={}, current={}, weights=weights)
        self.meta.reference_version = self.meta.reference_version or reference.version
        profiles = await reference_service.load_profiles(
            self.session, reference=reference, names=names
        )
        since, until, last = window_bounds(rule.window, now=self.now, state=self.state)
        columns = await readers.read_columns(
            self.session,
            product_id=self.product.id,
            features=list(profiles),
            since=since,
            until=until,
            last_rows=last,
            known_by=self.known_by,
        )
        self.meta.windows[rule.id] = {
            "reference_version": reference.version,
            **columns.window.as_json(),
        }
        return DataDriftInput(
            reference_version=reference.version,
            profiles=profiles,
            current={name: _drift_values(col) for name, col in columns.items()},
            weights=weights,
            window_start=since,
            window_end=until,
            n_rows=columns.window.n_rows,
        )

    async def errors(self) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        if self._errors is None:
            if not self.replay:
                self._errors = await readers.unprocessed_errors(
                    self.session, product_id=self.product.id
                )
                self.meta.consumed_ids = self._errors[0]
            elif self.as_known:
                # live evaluations feed detectors as labels join, not by prediction time: the
                # outcomes that joined since the previous step, in the order they were stored
                ids, errors = await readers.errors_joined_between(
                    self.session,
                    product_id=self.product.id,
                    after=self.replay_since,
                    until=self.now,
                )
                keep = ~np.isnan(errors)
                self._errors = (ids[keep], errors[keep])
            else:  # by event time: the outcomes predicted since the previous step
                read = await readers.read_outcomes(
                    self.session,
                    product_id=self.product.id,
                    since=self.replay_since,
                    until=self.now,
                    last_rows=None,
                )
                keep = ~np.isnan(read.errors)
                self._errors = (read.ids[keep], read.errors[keep])
        return self._errors

    async def concept_drift(self, rule: ConceptDriftRule) -> ConceptDriftInput:
        config = detector_config(rule)
        self.meta.detector_configs[rule.id] = config
        stored = self.state.detectors.get(rule.id)
        state = stored.get("state") if stored and stored.get("config") == config else None
        _, errors = await self.errors()
        self.meta.windows[rule.id] = {"new_errors": int(errors.size)}
        return ConceptDriftInput(state=state, errors=errors)

    async def new_labelled(self) -> int:
        if self.meta.new_labelled_samples is None:
            self.meta.new_labelled_samples = await readers.count_labelled(
                self.session,
                product_id=self.product.id,
                since=self.state.last_retrain_at,
                until=self.now,
                known_by=self.known_by,
            )
        return self.meta.new_labelled_samples

    async def alerts(self) -> list[AlertView]:
        if self._alerts is None:
            rows = await readers.active_alerts(
                self.session, product_id=self.product.id, at=self.now, known_by=self.known_by
            )
            self._alerts = [
                AlertView(
                    fingerprint=a.fingerprint,
                    labels=dict(a.labels),
                    status=a.status,
                    starts_at=a.starts_at,
                    source=a.source,
                )
                for a in rows
            ]
        return self._alerts


async def build_inputs(
    session: AsyncSession,
    *,
    product: Product,
    policy: PolicyBody,
    state: StateView,
    now: datetime,
    replay_since: datetime | None = None,
    replay: bool = False,
    as_known: bool = False,
) -> tuple[dict[str, RuleInput], InputsMeta]:
    """Inputs for every rule of ``policy`` at ``now``.

    Live evaluations feed detectors the outcomes no detector consumed yet; replays (backtests,
    ``replay=True``) feed them the outcomes predicted in ``(replay_since, now]`` and read every
    window by event time; with ``as_known`` too, the outcomes whose labels joined in
    ``(replay_since, now]``, every window as it was known at ``now`` and the reference active then.
    """
    reader = _Reader(session, product, state, now, replay_since, replay, as_known)
    inputs: dict[str, RuleInput] = {}
    for rule in policy.rules:
        if isinstance(rule, PerformanceRule):
            inputs[rule.id] = await reader.performance(rule)
        elif isinstance(rule, DataDriftRule):
            inputs[rule.id] = await reader.data_drift(rule)
        elif isinstance(rule, ConceptDriftRule):
            inputs[rule.id] = await reader.concept_drift(rule)
        elif isinstance(rule, StalenessRule):
            inputs[rule.id] = StalenessInput(
                model_trained_at=state.model_trained_at,
                new_labelled_samples=await reader.new_labelled(),
            )
        elif isinstance(rule, ScheduleRule):
            inputs[rule.id] = ScheduleInput(last_evaluated_at=state.schedule_mark(rule.id))
        elif isinstance(rule, AlertRule):
            inputs[rule.id] = AlertInput(alerts=await reader.alerts())
    if policy.guards.min_new_samples > 0:
        await reader.new_labelled()
    return inputs, reader.meta


async def mark_processed(session: AsyncSession, meta: InputsMeta) -> None:
    """Flag the outcomes the detectors consumed, in the decision's transaction."""
    if meta.consumed_ids is not None and meta.consumed_ids.size:
        await readers.mark_detector_processed(
            session, product_id=meta.product_id, ids=meta.consumed_ids
        )
