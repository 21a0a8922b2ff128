"""What each rule type needs, already read from storage: the windows the service fills.

Frozen dataclasses holding numpy arrays and plain values; no database, no HTTP. Naive
datetimes anywhere in these inputs are read as UTC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from retrigger.stats.profiles import Profile

__all__ = [
    "AlertInput",
    "AlertView",
    "ConceptDriftInput",
    "DataDriftInput",
    "MetricSeries",
    "OutcomeWindow",
    "PerformanceInput",
    "RuleInput",
    "ScheduleInput",
    "StalenessInput",
]

Array = npt.NDArray[Any]


@dataclass(frozen=True, eq=False)
class OutcomeWindow:
    """Prediction/label pairs of one window, aligned row by row.

    ``predictions`` and ``labels`` are object or float arrays; rows where either is missing
    (``None`` or NaN) are ignored. ``scores`` holds the predicted probability of the positive
    class (NaN where absent) and is needed by ``auc`` and ``log_loss`` only. ``positive_label``
    names the positive class of a binary classifier; ``None`` means 1/True/"1"/"true"
    (see :mod:`retrigger.evaluation.metrics`).
    """

    predictions: Array
    labels: Array
    scores: Array | None = None
    start: datetime | None = None
    end: datetime | None = None
    positive_label: str | int | bool | None = None

    @property
    def n(self) -> int:
        """Number of rows (before missing values are dropped)."""
        return int(np.size(self.labels))


@dataclass(frozen=True, eq=False)
class MetricSeries:
    """Metric points of one window, as reported by monitoring (custom or built-in metrics).

    ``sample_counts`` optionally gives, per point, the number of outcomes it was computed on:
    the rule's ``min_samples`` is then checked against their sum and the window value is the
    count-weighted mean. Without it every point counts as one sample and the value is the mean.
    Non-finite points are ignored. ``times`` (``datetime`` objects or a ``datetime64`` array,
    UTC) only bound the finding's window.
    """

    values: Array
    times: Sequence[datetime] | Array = ()
    sample_counts: Array | None = None


@dataclass(frozen=True, eq=False)
class PerformanceInput:
    """Inputs of a ``performance`` rule.

    ``baseline`` is the deployed version's value of the metric (needed by
    ``relative_threshold``). ``history`` holds this rule's ``Finding.breach`` at its previous
    evaluations, newest last; ``None`` entries (evaluations without enough data) are skipped
    when counting the last ``n`` evaluations.
    """

    outcomes: OutcomeWindow | None = None
    metric_points: MetricSeries | None = None
    baseline: float | None = None
    history: Sequence[bool | None] = ()


@dataclass(frozen=True, eq=False)
class DataDriftInput:
    """Inputs of a ``data_drift`` rule: the reference profiles and the current columns.

    ``reference_version`` is ``None`` when the product has no (active or pinned) reference.
    ``weights`` are the schema's feature importances, used when ``weight_by_importance`` is set.
    """

    reference_version: int | None
    profiles: Mapping[str, Profile]
    current: Mapping[str, Array]
    weights: Mapping[str, float] = field(default_factory=dict)
    window_start: datetime | None = None
    window_end: datetime | None = None
    n_rows: int = 0


@dataclass(frozen=True, eq=False)
class ConceptDriftInput:
    """Inputs of a ``concept_drift`` rule.

    ``state`` is the detector's JSON state returned by the previous evaluation as
    ``Finding.new_state`` (``None``: start fresh). ``errors`` are the error values of the
    outcomes received since then, oldest first: 0/1 misclassifications, or absolute errors.
    """

    state: Mapping[str, Any] | None
    errors: Array
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True, slots=True)
class StalenessInput:
    """Inputs of a ``staleness`` rule: when the deployed model was trained, new labels since."""

    model_trained_at: datetime | None
    new_labelled_samples: int = 0


@dataclass(frozen=True, slots=True)
class ScheduleInput:
    """Inputs of a ``schedule`` rule: when this rule was last evaluated (``None``: never)."""

    last_evaluated_at: datetime | None


@dataclass(frozen=True, slots=True)
class AlertView:
    """One alert of the product, at its latest status.

    ``status`` is ``firing`` or ``resolved``; ``source`` the webhook it came through
    (``alertmanager`` or ``grafana``).
    """

    fingerprint: str
    labels: Mapping[str, str]
    status: str
    starts_at: datetime | None = None
    source: str = "alertmanager"


@dataclass(frozen=True, slots=True)
class AlertInput:
    """Inputs of an ``alert`` rule: the product's current alerts, one per fingerprint."""

    alerts: Sequence[AlertView] = ()


RuleInput = (
    PerformanceInput
    | DataDriftInput
    | ConceptDriftInput
    | StalenessInput
    | ScheduleInput
    | AlertInput
)
"""The input of any rule; its class must match the rule's type."""
