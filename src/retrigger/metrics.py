"""Every Prometheus metric of retrigger, defined once.

HTTP
- ``retrigger_http_requests_total{method, route, status}``: requests answered, by route template.
- ``retrigger_http_request_duration_seconds{method, route}``: latency histogram.
- ``retrigger_http_requests_in_flight``: requests being served now.
- ``retrigger_http_request_body_rejected_total{reason}``: bodies refused before parsing
  (``too_large``, ``unsupported_media_type``).

Decisions
- ``retrigger_decisions_total{outcome, reason}``: stored decisions; ``reason`` is the guard that
  suppressed a fired decision (``silence``, ``shadow_mode``, ``cooldown``, ``max_runs``,
  ``min_new_samples``) or ``none``.
- ``retrigger_evaluation_errors_total{trigger}``: background evaluations that failed.

Database
- ``retrigger_db_pool_connections{state}``: pooled connections by state
  (``checked_out``, ``idle``, ``overflow``).

Process
- ``retrigger_build_info{version, python}``: always 1.

Labels are bounded: route templates (never raw paths), methods, status codes.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

from retrigger import __version__

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
HTTP_IN_FLIGHT = Gauge("retrigger_http_requests_in_flight", "HTTP requests being served now.")
HTTP_BODY_REJECTED = Counter(
    "retrigger_http_request_body_rejected_total",
    "Request bodies refused before parsing.",
    ["reason"],
)
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


def observe_decision(outcome: str, suppressed_by: str | None) -> None:
    DECISIONS.labels(outcome, suppressed_by or "none").inc()


BUILD_INFO = Gauge("retrigger_build_info", "Build information; always 1.", ["version", "python"])
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
