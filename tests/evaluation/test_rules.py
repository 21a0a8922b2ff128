"""Staleness, schedule and alert rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from retrigger.evaluation import AlertView, RuleStatus, ScheduleInput, StalenessInput
from retrigger.evaluation.rules import (
    evaluate_alert,
    evaluate_schedule,
    evaluate_staleness,
    matches,
)
from retrigger.policies.rules import AlertRule, ScheduleRule, StalenessRule

from .factories import NOW, alert, alerts, make_rule


def staleness(**fields: Any) -> StalenessRule:
    rule = make_rule(**{"id": "stale", "type": "staleness", "max_age": "30d", **fields})
    assert isinstance(rule, StalenessRule)
    return rule


def schedule(cron: str, timezone: str = "Europe/Berlin") -> ScheduleRule:
    rule = make_rule(id="cron", type="schedule", cron=cron, timezone=timezone)
    assert isinstance(rule, ScheduleRule)
    return rule


def alert_rule(*matchers: dict[str, str], **fields: Any) -> AlertRule:
    rule = make_rule(id="dq", type="alert", matchers=list(matchers), **fields)
    assert isinstance(rule, AlertRule)
    return rule


class TestEvaluateStaleness:
    def test_old_model_holds(self) -> None:
        finding = evaluate_staleness(staleness(), StalenessInput(NOW - timedelta(days=31)), now=NOW)
        assert finding.status is RuleStatus.HOLDS
        assert "31.0 days old" in finding.summary

    def test_young_model_does_not_hold(self) -> None:
        finding = evaluate_staleness(staleness(), StalenessInput(NOW - timedelta(days=29)), now=NOW)
        assert finding.status is RuleStatus.NOT_HOLDS

    def test_old_model_without_enough_new_labels_does_not_hold(self) -> None:
        data = StalenessInput(NOW - timedelta(days=40), new_labelled_samples=999)
        finding = evaluate_staleness(staleness(min_new_samples=1000), data, now=NOW)
        assert finding.status is RuleStatus.NOT_HOLDS
        assert finding.details["enough_new_samples"] is False

    def test_old_model_with_enough_new_labels_holds(self) -> None:
        data = StalenessInput(NOW - timedelta(days=40), new_labelled_samples=1000)
        assert evaluate_staleness(staleness(min_new_samples=1000), data, now=NOW).holds

    def test_unknown_training_time_is_insufficient(self) -> None:
        finding = evaluate_staleness(staleness(), StalenessInput(None), now=NOW)
        assert finding.status is RuleStatus.INSUFFICIENT_DATA

    def test_naive_training_time_is_utc(self) -> None:
        trained = (NOW - timedelta(days=31)).replace(tzinfo=None)
        assert evaluate_staleness(staleness(), StalenessInput(trained), now=NOW).holds


def utc(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


class TestEvaluateSchedule:
    def test_fire_time_since_last_evaluation_holds(self) -> None:
        rule = schedule("0 3 * * mon")  # 03:00 Berlin = 01:00 UTC in June
        finding = evaluate_schedule(rule, ScheduleInput(utc(2024, 6, 3, 0, 30)), now=NOW)
        assert finding.status is RuleStatus.HOLDS
        assert finding.details["fire_time"] == "2024-06-03T01:00:00+00:00"

    def test_no_fire_time_since_last_evaluation(self) -> None:
        rule = schedule("0 3 * * mon")
        finding = evaluate_schedule(rule, ScheduleInput(utc(2024, 6, 3, 1, 0)), now=NOW)
        assert finding.status is RuleStatus.NOT_HOLDS
        assert finding.details["next_fire"] == "2024-06-10T01:00:00+00:00"

    def test_first_evaluation_records_next_fire(self) -> None:
        finding = evaluate_schedule(schedule("0 3 * * mon"), ScheduleInput(None), now=NOW)
        assert finding.status is RuleStatus.NOT_HOLDS
        assert finding.details["next_fire_local"] == "2024-06-10T03:00:00+02:00"

    @pytest.mark.parametrize(
        ("now", "status"),
        [(utc(2024, 3, 31, 1, 29), "not_holds"), (utc(2024, 3, 31, 1, 30), "holds")],
    )
    def test_spring_forward_gap_fires_after_the_change(self, now: datetime, status: str) -> None:
        # 02:30 does not exist in Berlin on 2024-03-31; it fires at 03:30 CEST = 01:30 UTC.
        rule = schedule("30 2 * * *")
        finding = evaluate_schedule(rule, ScheduleInput(utc(2024, 3, 31, 0, 0)), now=now)
        assert finding.status == status

    def test_fall_back_repeated_hour_fires_once(self) -> None:
        # 02:30 happens twice in Berlin on 2024-10-27 (00:30 and 01:30 UTC); it fired at the first.
        rule = schedule("30 2 * * *")
        finding = evaluate_schedule(
            rule, ScheduleInput(utc(2024, 10, 27, 0, 31)), now=utc(2024, 10, 27, 1, 45)
        )
        assert finding.status is RuleStatus.NOT_HOLDS


class TestMatches:
    def test_equal_and_regex(self) -> None:
        rule = alert_rule(
            {"name": "alertname", "value": "DataQualityDegraded"},
            {"name": "severity", "op": "=~", "value": "warning|critical"},
        )
        assert matches(rule, alert(alertname="DataQualityDegraded", severity="critical"))
        assert not matches(rule, alert(alertname="DataQualityDegraded", severity="info"))

    def test_regex_is_fully_anchored(self) -> None:
        rule = alert_rule({"name": "alertname", "op": "=~", "value": "Data.*"})
        assert matches(rule, alert(alertname="DataLate"))
        assert not matches(rule, alert(alertname="OldDataLate"))

    def test_not_equal_matches_a_missing_label(self) -> None:
        rule = alert_rule({"name": "env", "op": "!=", "value": "staging"})
        assert matches(rule, alert(alertname="X"))
        assert not matches(rule, alert(alertname="X", env="staging"))

    def test_negative_regex(self) -> None:
        rule = alert_rule({"name": "team", "op": "!~", "value": "ml-.*"})
        assert matches(rule, alert(team="data"))
        assert not matches(rule, alert(team="ml-fraud"))

    def test_severity_shorthand(self) -> None:
        rule = alert_rule({"name": "alertname", "value": "X"}, severity="critical")
        assert matches(rule, alert(alertname="X", severity="critical"))
        assert not matches(rule, alert(alertname="X", severity="warning"))

    def test_status_must_match(self) -> None:
        rule = alert_rule({"name": "alertname", "value": "X"})
        assert not matches(rule, alert(status="resolved", alertname="X"))

    def test_origin_must_match(self) -> None:
        rule = alert_rule({"name": "alertname", "value": "X"}, origin="grafana")
        view = AlertView("fp", {"alertname": "X"}, "firing", None, "alertmanager")
        assert not matches(rule, view)


class TestEvaluateAlert:
    def test_matching_alert_holds(self) -> None:
        rule = alert_rule({"name": "alertname", "value": "DQ"})
        data = alerts(alert("b", alertname="Other"), alert("a", alertname="DQ"))
        finding = evaluate_alert(rule, data, now=NOW)
        assert finding.status is RuleStatus.HOLDS
        assert [m["fingerprint"] for m in finding.details["matched"]] == ["a"]
        assert finding.summary == "1 firing alert(s) match: DQ [a]"

    def test_no_matching_alert_does_not_hold(self) -> None:
        rule = alert_rule({"name": "alertname", "value": "DQ"})
        finding = evaluate_alert(rule, alerts(alert(alertname="Other")), now=NOW)
        assert finding.status is RuleStatus.NOT_HOLDS
