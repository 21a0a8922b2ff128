"""Every Prometheus metric of retrigger, defined once; ``docs/metrics.md`` explains each one.

- HTTP: ``retrigger_http_requests_total{method,route,status}``,
  ``retrigger_http_request_duration_seconds{method,route}``,
  ``retrigger_http_requests_in_flight``, ``retrigger_http_request_body_rejected_total{reason}``.
- Signals: ``retrigger_signals_ingested_total{kind,product,outcome}``,
  ``retrigger_ingest_batch_size{kind}``.
- Evaluations: ``retrigger_decisions_total{outcome,reason}``,
  ``retrigger_evaluations_total{product,outcome}``,
  ``retrigger_evaluation_duration_seconds{trigger}``,
  ``retrigger_evaluation_errors_total{trigger}``,
  ``retrigger_rules_fired_total{rule_type}``, ``retrigger_guard_suppressions_total{product,guard}``,
  ``retrigger_budget_remaining{product}``, ``retrigger_model_age_seconds{product}``,
  ``retrigger_feature_drift_statistic{product,feature,test}``,
  ``retrigger_feature_drift_p_value{product,feature,test}``,
  ``retrigger_feature_drift_effect_ratio{product,feature,test}``,
  ``retrigger_feature_drifted{product,feature,test}``.
- Runs: ``retrigger_runs{state}``, ``retrigger_run_oldest_active_seconds``,
  ``retrigger_worker_last_pass_timestamp_seconds``,
  ``retrigger_run_transitions_total{kind,state}``,
  ``retrigger_dispatch_attempts_total{kind,result}``,
  ``retrigger_dispatch_errors_total{kind,error_class}``,
  ``retrigger_decision_to_submit_seconds{kind}``,
  ``retrigger_submit_to_terminal_seconds{kind,state}``.
- Process: ``retrigger_build_info{version,python}``, ``retrigger_db_pool_connections{state}``.

Labels are bounded: route templates, fixed vocabularies (checked here), and product, feature,
test and orchestrator names that exist only once registered. Never an id.
"""

from __future__ import annotations

import functools
import math
import os
import platform
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import Counter, Gauge, Histogram, generate_latest, multiprocess, values
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector, CollectorRegistry

from retrigger import __version__

INGEST_KINDS = frozenset({"metrics", "samples", "outcomes", "alerts"})
INGEST_OUTCOMES = frozenset({"accepted", "duplicate", "rejected"})
UNKNOWN_PRODUCT = "_unknown"
"""Product label of alerts naming no product the key can see (never a valid product name)."""
EVALUATION_OUTCOMES = frozenset({"fired", "not_fired", "suppressed", "insufficient_data"})
RUN_STATES = (
    "pending",
    "awaiting_approval",
    "submitted",
    "running",
    "succeeded",
    "failed",
    "rejected",
    "cancelled",
)
TERMINAL_RUN_STATES = frozenset({"succeeded", "failed", "rejected", "cancelled"})
DISPATCH_RESULTS = frozenset({"submitted", "retry", "failed"})
DISPATCH_ERROR_CLASSES = frozenset(
    {"unavailable", "rejected", "timeout", "connect", "secret", "internal"}
)

# --- HTTP ------------------------------------------------------------------------------------

HTTP_REQUESTS = Counter(
    "retrigger_http_requests_total",
    "HTTP requests answered, by route template and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "retrigger_http_request_duration_seconds",
    "HTTP request latency by route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
HTTP_IN_FLIGHT = Gauge(
    "retrigger_http_requests_in_flight",
    "HTTP requests being served now.",
    multiprocess_mode="livesum",
)
HTTP_BODY_REJECTED = Counter(
    "retrigger_http_request_body_rejected_total",
    "Request bodies refused before parsing.",
    ["reason"],
)

# --- signals ---------------------------------------------------------------------------------

SIGNALS_INGESTED = Counter(
    "retrigger_signals_ingested_total",
    "Signals (metric points, sample rows, outcomes, alerts) by kind, product and outcome.",
    ["kind", "product", "outcome"],
)
INGEST_BATCH_SIZE = Histogram(
    "retrigger_ingest_batch_size",
    "Items per accepted ingestion batch (alerts: per notification).",
    ["kind"],
    buckets=(1, 10, 50, 100, 500, 1_000, 5_000, 10_000, 50_000, 100_000),
)

# --- evaluations and decisions ---------------------------------------------------------------

DECISIONS = Counter(
    "retrigger_decisions_total",
    "Stored decisions by outcome and suppressing guard.",
    ["outcome", "reason"],
)
EVALUATION_ERRORS = Counter(
    "retrigger_evaluation_errors_total",
    "Background evaluations that failed, by trigger.",
    ["trigger"],
)
EVALUATIONS = Counter(
    "retrigger_evaluations_total",
    "Stored evaluations by product and outcome.",
    ["product", "outcome"],
)
EVALUATION_DURATION = Histogram(
    "retrigger_evaluation_duration_seconds",
    "Time to evaluate a product and store the decision, by trigger.",
    ["trigger"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
RULES_FIRED = Counter(
    "retrigger_rules_fired_total",
    "Rules that fired in stored evaluations (suppressed ones included), by rule type.",
    ["rule_type"],
)
GUARD_SUPPRESSIONS = Counter(
    "retrigger_guard_suppressions_total",
    "Fired evaluations suppressed, by product and the guard that suppressed them.",
    ["product", "guard"],
)
BUDGET_REMAINING = Gauge(
    "retrigger_budget_remaining",
    "Retrains left in the product's budget period as of its last evaluation.",
    ["product"],
    multiprocess_mode="mostrecent",
)
FEATURE_DRIFT_STATISTIC = Gauge(
    "retrigger_feature_drift_statistic",
    "Drift statistic of each feature at the product's last stored evaluation.",
    ["product", "feature", "test"],
    multiprocess_mode="mostrecent",
)
FEATURE_DRIFT_P_VALUE = Gauge(
    "retrigger_feature_drift_p_value",
    "Uncorrected p-value of each feature's drift test at the last stored evaluation.",
    ["product", "feature", "test"],
    multiprocess_mode="mostrecent",
)
FEATURE_DRIFT_EFFECT_RATIO = Gauge(
    "retrigger_feature_drift_effect_ratio",
    "Each feature's effect size over its test's min_effect at the last stored evaluation "
    "(>= 1: a material change, comparable across tests).",
    ["product", "feature", "test"],
    multiprocess_mode="mostrecent",
)
FEATURE_DRIFTED = Gauge(
    "retrigger_feature_drifted",
    "1 when the feature counted as drifted at the last stored evaluation, else 0.",
    ["product", "feature", "test"],
    multiprocess_mode="mostrecent",
)
MODEL_AGE = Gauge(
    "retrigger_model_age_seconds",
    "Seconds since the product's serving model was trained.",
    ["product"],
    multiprocess_mode="mostrecent",
)


# --- runs ------------------------------------------------------------------------------------

RUNS = Gauge(
    "retrigger_runs",
    "Retraining runs by state.",
    ["state"],
    multiprocess_mode="mostrecent",
)
RUN_OLDEST_ACTIVE = Gauge(
    "retrigger_run_oldest_active_seconds",
    "Age of the oldest pending, submitted or running run; 0 when there is none.",
    multiprocess_mode="mostrecent",
)
WORKER_HEARTBEAT = Gauge(
    "retrigger_worker_last_pass_timestamp_seconds",
    "Unix time the dispatcher of this worker process last finished a pass.",
    multiprocess_mode="livemax",
)
RUN_TRANSITIONS = Counter(
    "retrigger_run_transitions_total",
    "Runs entering a state, by orchestrator kind.",
    ["kind", "state"],
)
DISPATCH_ATTEMPTS = Counter(
    "retrigger_dispatch_attempts_total",
    "Submissions tried, by orchestrator kind and result.",
    ["kind", "result"],
)
DISPATCH_ERRORS = Counter(
    "retrigger_dispatch_errors_total",
    "Failed submissions, by orchestrator kind and error class.",
    ["kind", "error_class"],
)
DECISION_TO_SUBMIT = Histogram(
    "retrigger_decision_to_submit_seconds",
    "Time from the decision to the run's acceptance by the orchestrator.",
    ["kind"],
    buckets=(1, 5, 15, 30, 60, 120, 300, 900, 1_800, 3_600, 14_400, 86_400, 259_200),
)
SUBMIT_TO_TERMINAL = Histogram(
    "retrigger_submit_to_terminal_seconds",
    "Time from submission to a terminal state, by orchestrator kind and that state.",
    ["kind", "state"],
    buckets=(60, 300, 900, 1_800, 3_600, 7_200, 14_400, 28_800, 86_400, 172_800, 604_800),
)

# --- process ---------------------------------------------------------------------------------

BUILD_INFO = Gauge(
    "retrigger_build_info",
    "Build information; always 1.",
    ["version", "python"],
    multiprocess_mode="livemax",
)
BUILD_INFO.labels(version=__version__, python=platform.python_version()).set(1)


class DBPoolCollector(Collector):
    """Reads the pool of the process's engine at scrape time."""

    def __init__(self) -> None:
        self.pool: Any = None

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "retrigger_db_pool_connections", "Pooled database connections.", labels=["state"]
        )
        pool = self.pool
        if pool is not None and hasattr(pool, "checkedout"):
            out = pool.checkedout()
            family.add_metric(["checked_out"], float(out))
            if hasattr(pool, "checkedin"):
                family.add_metric(["idle"], float(pool.checkedin()))
            if hasattr(pool, "overflow"):
                family.add_metric(["overflow"], float(max(pool.overflow(), 0)))
        yield family


DB_POOL = DBPoolCollector()
REGISTRY.register(DB_POOL)


# --- exposition ------------------------------------------------------------------------------


def multiprocess_enabled() -> bool:
    """Whether prometheus-client runs in multi-process mode (``PROMETHEUS_MULTIPROC_DIR``)."""
    # the library decides once, when it is imported; asking it keeps us in step with that choice
    return values.ValueClass is not values.MutexValue


@functools.cache
def _multiprocess_registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    # pools live in memory: this one is the pool of the worker answering the scrape
    registry.register(DB_POOL)
    return registry


def exposition() -> bytes:
    """The text exposition: this process's metrics, or every worker's in multi-process mode."""
    return generate_latest(_multiprocess_registry() if multiprocess_enabled() else REGISTRY)


def process_exiting() -> None:
    """Drop this process's ``live*`` gauges from the shared directory (call at shutdown)."""
    if multiprocess_enabled():
        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def _checked(name: str, value: str, allowed: Iterable[str]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {sorted(allowed)}, not {value!r}")
    return value


def _forget(gauge: Gauge, *labels: str) -> None:
    """Drop a series that no longer applies; NaN in multi-process mode, which cannot delete."""
    if multiprocess_enabled():
        gauge.labels(*labels).set(math.nan)
    else:
        gauge.remove(*labels)


# --- signals ---------------------------------------------------------------------------------


def observe_ingest(kind: str, product: str, outcome: str, items: int) -> None:
    """Count ``items`` signals of one batch (points, rows, outcomes or alerts) by outcome."""
    _checked("kind", kind, INGEST_KINDS)
    _checked("outcome", outcome, INGEST_OUTCOMES)
    if items > 0:
        SIGNALS_INGESTED.labels(kind, product, outcome).inc(items)


def observe_batch_size(kind: str, items: int) -> None:
    """Record the size of one accepted batch."""
    INGEST_BATCH_SIZE.labels(_checked("kind", kind, INGEST_KINDS)).observe(items)


# --- evaluations -----------------------------------------------------------------------------

# series this process set, so it can drop them (product -> (feature, test) -> has a p-value)
_drift_series: dict[str, dict[tuple[str, str], frozenset[Gauge]]] = {}
_budgeted: set[str] = set()
_aged: set[str] = set()
# (product, "drift" | "budget") -> id of the decision those gauges show (see state_gauges.py)
_applied: dict[tuple[str, str], int] = {}


def observe_evaluation(
    *,
    product: str,
    outcome: str,
    trigger: str,
    seconds: float,
    suppressed_by: str | None,
    fired_rule_types: Iterable[str],
    findings: Sequence[Mapping[str, Any]] | None,
    budget_remaining: int | None,
    decision_id: int | None = None,
) -> None:
    """Count an evaluation (by product, and by outcome and guard) and show its drift and budget
    gauges at once.

    ``fired_rule_types`` holds one entry per fired rule; ``findings`` are the stored findings
    (``None``: a manual retrain, which tests nothing, leaves the drift gauges alone);
    ``budget_remaining`` is ``None`` when the policy sets no budget. Other processes pick the
    stored decision up at their next state-gauge refresh.
    """
    EVALUATIONS.labels(product, _checked("outcome", outcome, EVALUATION_OUTCOMES)).inc()
    DECISIONS.labels(outcome, suppressed_by or "none").inc()
    EVALUATION_DURATION.labels(trigger).observe(seconds)
    for rule_type in fired_rule_types:
        RULES_FIRED.labels(rule_type).inc()
    if suppressed_by is not None:
        GUARD_SUPPRESSIONS.labels(product, suppressed_by).inc()
    if findings is not None:
        show_drift(product, decision_id, findings)
    show_budget(product, decision_id, budget_remaining)


def applied_decision(product: str, kind: str) -> int | None:
    """The decision whose ``kind`` ("drift" or "budget") gauges this process shows."""
    return _applied.get((product, kind))


def show_drift(
    product: str, decision_id: int | None, findings: Sequence[Mapping[str, Any]]
) -> None:
    """Show the drift statistics of a stored decision's findings."""
    _set_drift(product, findings)
    if decision_id is not None:
        _applied[(product, "drift")] = decision_id


def show_budget(product: str, decision_id: int | None, budget_remaining: int | None) -> None:
    """Show the budget left as of a stored decision (``None``: the policy sets none)."""
    if budget_remaining is not None:
        BUDGET_REMAINING.labels(product).set(budget_remaining)
        _budgeted.add(product)
    elif product in _budgeted:
        _forget(BUDGET_REMAINING, product)
        _budgeted.discard(product)
    if decision_id is not None:
        _applied[(product, "budget")] = decision_id


def _set_drift(product: str, findings: Sequence[Mapping[str, Any]]) -> None:
    """Per-feature drift gauges of the ``data_drift`` findings; series no longer set go."""
    current: dict[tuple[str, str], dict[Gauge, float]] = {}
    for finding in findings:
        if finding.get("type") != "data_drift":
            continue
        features: Mapping[str, Any] = (finding.get("details") or {}).get("features") or {}
        for feature, entry in features.items():
            result = entry.get("result") or {}
            statistic = result.get("statistic")
            if statistic is None:  # too little data: no test ran
                continue
            key = (str(feature), str(entry.get("test") or result.get("test")))
            values = {
                FEATURE_DRIFT_STATISTIC: float(statistic),
                FEATURE_DRIFTED: 1.0 if result.get("drifted") else 0.0,
            }
            if result.get("p_value") is not None:  # distance-only tests have none
                values[FEATURE_DRIFT_P_VALUE] = float(result["p_value"])
            effect, threshold = result.get("effect_size"), result.get("min_effect")
            if effect is not None and threshold:
                values[FEATURE_DRIFT_EFFECT_RATIO] = float(effect) / float(threshold)
            current[key] = values
    before = _drift_series.get(product, {})
    for key, values in current.items():
        for gauge, number in values.items():
            gauge.labels(product, *key).set(number)
    for key, gauges in before.items():
        for gauge in gauges - current.get(key, {}).keys():
            _forget(gauge, product, *key)
    _drift_series[product] = {key: frozenset(values) for key, values in current.items()}


def set_model_ages(ages: Mapping[str, float]) -> None:
    """Model age per product (seconds); products left out lose their series."""
    for product, seconds in ages.items():
        MODEL_AGE.labels(product).set(seconds)
    for product in _aged - ages.keys():
        _forget(MODEL_AGE, product)
    _aged.clear()
    _aged.update(ages)


def forget_product(product: str) -> None:
    """Drop a deleted product's gauges (drift, budget, model age) from this process."""
    for key, gauges in _drift_series.pop(product, {}).items():
        for gauge in gauges:
            _forget(gauge, product, *key)
    if product in _budgeted:
        _forget(BUDGET_REMAINING, product)
        _budgeted.discard(product)
    if product in _aged:
        _forget(MODEL_AGE, product)
        _aged.discard(product)
    _applied.pop((product, "drift"), None)
    _applied.pop((product, "budget"), None)


def forget_products_except(products: Iterable[str]) -> None:
    """Drop the gauges of every product not in ``products`` (deleted meanwhile)."""
    keep = set(products)
    shown = set(_drift_series) | _budgeted | _aged | {name for name, _ in _applied}
    for product in shown - keep:
        forget_product(product)


# --- runs ------------------------------------------------------------------------------------


def observe_run_transition(kind: str, state: str) -> None:
    """Count a run of an orchestrator of ``kind`` entering ``state``."""
    RUN_TRANSITIONS.labels(kind, _checked("state", state, RUN_STATES)).inc()


def observe_dispatch_attempt(kind: str, result: str, error_class: str | None = None) -> None:
    """Count one submission attempt, and its error class when it failed."""
    DISPATCH_ATTEMPTS.labels(kind, _checked("result", result, DISPATCH_RESULTS)).inc()
    if error_class is not None:
        error = _checked("error_class", error_class, DISPATCH_ERROR_CLASSES)
        DISPATCH_ERRORS.labels(kind, error).inc()


def observe_decision_to_submit(kind: str, seconds: float) -> None:
    """Record the time from a decision to its run's submission."""
    DECISION_TO_SUBMIT.labels(kind).observe(seconds)


def observe_submit_to_terminal(kind: str, state: str, seconds: float) -> None:
    """Record the time from a run's submission to its terminal ``state``."""
    SUBMIT_TO_TERMINAL.labels(kind, _checked("state", state, TERMINAL_RUN_STATES)).observe(seconds)


def worker_heartbeat() -> None:
    """The dispatcher of this process finished a pass."""
    WORKER_HEARTBEAT.set_to_current_time()


def set_run_counts(counts: Mapping[str, int], oldest_active_seconds: float) -> None:
    """Runs per state (every known state, zero when missing) and the oldest active run's age."""
    for state in counts:
        _checked("state", state, RUN_STATES)
    for state in RUN_STATES:
        RUNS.labels(state).set(counts.get(state, 0))
    RUN_OLDEST_ACTIVE.set(max(oldest_active_seconds, 0.0))
