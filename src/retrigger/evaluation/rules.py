"""One evaluation function per rule type, each returning a :class:`Finding`.

``staleness``, ``schedule`` and ``alert`` live here; ``performance`` and the two drift rules
have their own modules and are re-exported, so this module is the one place to look them up.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from retrigger.evaluation.drift import evaluate_concept_drift, evaluate_data_drift
from retrigger.evaluation.findings import Finding, FindingWindow, RuleStatus, as_utc, span
from retrigger.evaluation.inputs import AlertInput, AlertView, ScheduleInput, StalenessInput
from retrigger.evaluation.performance import evaluate_performance
from retrigger.policies.cron import next_fire
from retrigger.policies.durations import format_duration
from retrigger.policies.matchers import AlertOrigin, Matcher, MatchOp
from retrigger.policies.rules import AlertRule, ScheduleRule, StalenessRule

__all__ = [
    "evaluate_alert",
    "evaluate_concept_drift",
    "evaluate_data_drift",
    "evaluate_performance",
    "evaluate_schedule",
    "evaluate_staleness",
    "matches",
]


def evaluate_staleness(rule: StalenessRule, data: StalenessInput, *, now: datetime) -> Finding:
    """Evaluate a ``staleness`` rule.

    Parameters
    ----------
    rule
        ``max_age`` and the optional ``min_new_samples``.
    data
        When the deployed model was trained, and the labelled rows received since.
    now
        Evaluation time.

    Returns
    -------
    Finding
        ``holds`` when ``now - model_trained_at > max_age`` and, if ``min_new_samples`` is
        set, at least that many new labelled rows exist; ``insufficient_data`` when no
        training time is known.
    """
    limit = format_duration(rule.max_age)
    details: dict[str, Any] = {
        "max_age": limit,
        "min_new_samples": rule.min_new_samples,
        "new_labelled_samples": data.new_labelled_samples,
        "model_trained_at": data.model_trained_at,
    }
    if data.model_trained_at is None:
        details["reason"] = "no training time is known for the deployed model"
        summary = "insufficient data: no training time is known for the deployed model"
        return Finding(rule.id, rule.type, RuleStatus.INSUFFICIENT_DATA, summary, details)
    trained = as_utc(data.model_trained_at)
    age = now - trained
    old = age > rule.max_age
    enough = rule.min_new_samples is None or data.new_labelled_samples >= rule.min_new_samples
    details.update(age_seconds=age.total_seconds(), too_old=old, enough_new_samples=enough)
    summary = (
        f"the model trained {trained:%Y-%m-%d %H:%M} UTC is {span(age)} old "
        f"({'over' if old else 'within'} the limit {limit})"
    )
    if rule.min_new_samples is not None:
        summary += (
            f", with {data.new_labelled_samples} new labelled rows "
            f"({'at least' if enough else 'fewer than'} the {rule.min_new_samples} needed)"
        )
    status = RuleStatus.HOLDS if old and enough else RuleStatus.NOT_HOLDS
    window = FindingWindow(trained, now, data.new_labelled_samples)
    return Finding(rule.id, rule.type, status, summary, details, window=window)


def evaluate_schedule(rule: ScheduleRule, data: ScheduleInput, *, now: datetime) -> Finding:
    """Evaluate a ``schedule`` rule.

    Parameters
    ----------
    rule
        Cron expression and IANA time zone.
    data
        When this rule was last evaluated (``None``: never).
    now
        Evaluation time.

    Returns
    -------
    Finding
        ``holds`` when a fire time falls in ``(last_evaluated_at, now]``, whatever the number
        of fire times in it; on the first evaluation it does not hold and records the next fire
        time. Daylight saving follows :mod:`retrigger.policies.cron`.
    """
    upcoming = next_fire(rule.cron, now, rule.timezone)
    details: dict[str, Any] = {
        "cron": rule.cron,
        "timezone": rule.timezone,
        "last_evaluated_at": data.last_evaluated_at,
        "next_fire": upcoming,
        "next_fire_local": upcoming.isoformat(),
    }
    where = f"cron '{rule.cron}' ({rule.timezone})"
    if data.last_evaluated_at is None:
        summary = (
            f"{where}: first evaluation, the schedule starts; next fire {upcoming.isoformat()}"
        )
        return Finding(
            rule.id,
            rule.type,
            RuleStatus.NOT_HOLDS,
            summary,
            details,
            window=FindingWindow(end=now),
        )
    last = as_utc(data.last_evaluated_at)
    fire = next_fire(rule.cron, last, rule.timezone)
    holds = fire <= now
    details.update(
        fire_time=fire if holds else None, fire_time_local=fire.isoformat() if holds else None
    )
    if holds:
        summary = f"{where} fired at {fire.isoformat()}, after the last evaluation"
    else:
        summary = f"{where}: no fire time since the last evaluation; next {upcoming.isoformat()}"
    status = RuleStatus.HOLDS if holds else RuleStatus.NOT_HOLDS
    return Finding(rule.id, rule.type, status, summary, details, window=FindingWindow(last, now))


def _matcher_matches(matcher: Matcher, labels: Mapping[str, str]) -> bool:
    value = labels.get(matcher.name, "")  # Alertmanager: a missing label is the empty string
    if matcher.op is MatchOp.EQUAL:
        return value == matcher.value
    if matcher.op is MatchOp.NOT_EQUAL:
        return value != matcher.value
    found = re.fullmatch(matcher.value, value) is not None
    return found if matcher.op is MatchOp.REGEX else not found


def matches(rule: AlertRule, alert: AlertView) -> bool:
    """Whether ``alert`` makes ``rule`` hold: status, origin, severity and every matcher."""
    if alert.status.lower() != rule.status.value:
        return False
    if rule.origin is not AlertOrigin.ANY and alert.source.lower() != rule.origin.value:
        return False
    if rule.severity is not None and alert.labels.get("severity", "") != rule.severity:
        return False
    return all(_matcher_matches(m, alert.labels) for m in rule.matchers)


def _describe(alert: AlertView) -> str:
    name = alert.labels.get("alertname") or "alert"
    return f"{name} [{alert.fingerprint}]"


def evaluate_alert(rule: AlertRule, data: AlertInput, *, now: datetime) -> Finding:
    """Evaluate an ``alert`` rule.

    Parameters
    ----------
    rule
        Label matchers (``=``, ``!=``, fully anchored ``=~`` and ``!~``; a missing label
        reads as the empty string), ``severity`` shorthand, ``status`` and ``origin``.
    data
        The product's alerts, latest status per fingerprint.
    now
        Evaluation time.

    Returns
    -------
    Finding
        ``holds`` when at least one alert matches; never ``insufficient_data``.
    """
    matched = sorted((a for a in data.alerts if matches(rule, a)), key=lambda a: a.fingerprint)
    conditions = [f'{m.name}{m.op.value}"{m.value}"' for m in rule.matchers]
    if rule.severity is not None:
        conditions.append(f'severity="{rule.severity}"')
    details: dict[str, Any] = {
        "matchers": conditions,
        "status": rule.status.value,
        "origin": rule.origin.value,
        "n_alerts": len(data.alerts),
        "n_matched": len(matched),
        "matched": [
            {
                "fingerprint": a.fingerprint,
                "labels": dict(a.labels),
                "status": a.status,
                "starts_at": a.starts_at,
                "source": a.source,
            }
            for a in matched[:20]
        ],
    }
    starts = [as_utc(a.starts_at) for a in matched if a.starts_at is not None]
    window = FindingWindow(min(starts, default=None), now, len(matched))
    if matched:
        listed = ", ".join(_describe(a) for a in matched[:5])
        more = f" and {len(matched) - 5} more" if len(matched) > 5 else ""
        summary = f"{len(matched)} {rule.status.value} alert(s) match: {listed}{more}"
        return Finding(rule.id, rule.type, RuleStatus.HOLDS, summary, details, window=window)
    summary = (
        f"no {rule.status.value} alert matches {', '.join(conditions)} "
        f"({len(data.alerts)} alert(s) checked)"
    )
    return Finding(rule.id, rule.type, RuleStatus.NOT_HOLDS, summary, details, window=window)
