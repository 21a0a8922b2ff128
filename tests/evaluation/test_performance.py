"""The performance rule: absolute and relative thresholds, both directions, M of N, data checks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from retrigger.evaluation import MetricSeries, OutcomeWindow, PerformanceInput, RuleStatus
from retrigger.evaluation.performance import evaluate_performance, m_of_n
from retrigger.policies.rules import PerformanceRule

from .factories import NOW, make_rule, outcomes_with_accuracy, regression_outcomes


def perf(**fields: Any) -> PerformanceRule:
    doc = {"id": "perf", "type": "performance", "metric": "accuracy", "min_samples": 100}
    rule = make_rule(**{**doc, **fields})
    assert isinstance(rule, PerformanceRule)
    return rule


class TestAbsoluteThreshold:
    @pytest.mark.parametrize(("accuracy", "status"), [(0.80, "holds"), (0.90, "not_holds")])
    def test_higher_is_better(self, accuracy: float, status: str) -> None:
        finding = evaluate_performance(
            perf(threshold=0.85), PerformanceInput(outcomes_with_accuracy(accuracy)), now=NOW
        )
        assert finding.status == status
        assert finding.breach is (status == "holds")

    @pytest.mark.parametrize(("error", "status"), [(1.2, "holds"), (0.8, "not_holds")])
    def test_lower_is_better(self, error: float, status: str) -> None:
        rule = perf(metric="rmse", threshold=1.0)
        finding = evaluate_performance(rule, PerformanceInput(regression_outcomes(error)), now=NOW)
        assert finding.status == status
        assert finding.details["value"] == pytest.approx(error)


class TestRelativeThreshold:
    @pytest.mark.parametrize(
        ("accuracy", "status"), [(0.84, "holds"), (0.86, "not_holds"), (0.95, "not_holds")]
    )
    def test_higher_is_better(self, accuracy: float, status: str) -> None:
        data = PerformanceInput(outcomes_with_accuracy(accuracy), baseline=0.9)
        finding = evaluate_performance(perf(relative_threshold=0.05), data, now=NOW)
        assert finding.status == status

    @pytest.mark.parametrize(
        ("error", "status"), [(1.15, "holds"), (1.05, "not_holds"), (0.5, "not_holds")]
    )
    def test_lower_is_better(self, error: float, status: str) -> None:
        rule = perf(metric="rmse", relative_threshold=0.1)
        data = PerformanceInput(regression_outcomes(error), baseline=1.0)
        assert evaluate_performance(rule, data, now=NOW).status == status

    def test_summary_states_drop_and_limit(self) -> None:
        data = PerformanceInput(outcomes_with_accuracy(0.81), baseline=0.87)
        finding = evaluate_performance(perf(relative_threshold=0.05), data, now=NOW)
        assert finding.summary.startswith(
            "accuracy 0.81 is 6.9% below the baseline 0.87 (limit 5% below)"
        )

    def test_missing_baseline_is_insufficient(self) -> None:
        data = PerformanceInput(outcomes_with_accuracy(0.8))
        finding = evaluate_performance(perf(relative_threshold=0.05), data, now=NOW)
        assert finding.status is RuleStatus.INSUFFICIENT_DATA
        assert "baseline" in finding.details["reason"]
        assert finding.breach is None

    def test_zero_baseline_is_insufficient(self) -> None:
        rule = perf(metric="mae", relative_threshold=0.1)
        data = PerformanceInput(regression_outcomes(0.5), baseline=0.0)
        assert evaluate_performance(rule, data, now=NOW).status is RuleStatus.INSUFFICIENT_DATA


class TestData:
    def test_fewer_than_min_samples_is_insufficient(self) -> None:
        data = PerformanceInput(outcomes_with_accuracy(0.5, n=50))
        finding = evaluate_performance(perf(threshold=0.9), data, now=NOW)
        assert finding.status is RuleStatus.INSUFFICIENT_DATA
        assert finding.details["reason"] == "50 samples, 100 needed"

    def test_no_data_is_insufficient(self) -> None:
        finding = evaluate_performance(perf(threshold=0.9), PerformanceInput(), now=NOW)
        assert finding.status is RuleStatus.INSUFFICIENT_DATA

    def test_undefined_metric_is_insufficient(self) -> None:
        window = OutcomeWindow(np.zeros(200), np.zeros(200))
        finding = evaluate_performance(
            perf(metric="recall", threshold=0.5), PerformanceInput(window), now=NOW
        )
        assert finding.status is RuleStatus.INSUFFICIENT_DATA
        assert "no positive labels" in finding.details["reason"]

    def test_custom_metric_uses_mean_of_points(self) -> None:
        rule = perf(metric="ndcg_at_10", direction="higher_is_better", threshold=0.5, min_samples=3)
        times = [NOW - timedelta(hours=h) for h in (3, 2, 1)]
        data = PerformanceInput(metric_points=MetricSeries(np.array([0.4, 0.45, 0.5]), times))
        finding = evaluate_performance(rule, data, now=NOW)
        assert finding.status is RuleStatus.HOLDS
        assert finding.details["value"] == pytest.approx(0.45)
        assert finding.window.start == times[0]

    def test_sample_counts_weight_points_and_count_samples(self) -> None:
        rule = perf(metric="custom", direction="lower_is_better", threshold=1.0, min_samples=100)
        points = MetricSeries(np.array([0.5, 2.0]), sample_counts=np.array([90, 30]))
        finding = evaluate_performance(rule, PerformanceInput(metric_points=points), now=NOW)
        assert finding.details["value"] == pytest.approx((0.5 * 90 + 2.0 * 30) / 120)
        assert finding.details["n_samples"] == 120

    def test_built_in_metric_prefers_outcomes(self) -> None:
        data = PerformanceInput(
            outcomes_with_accuracy(0.8), metric_points=MetricSeries(np.array([0.99]))
        )
        finding = evaluate_performance(perf(threshold=0.85), data, now=NOW)
        assert finding.details["source"] == "outcomes"

    def test_datetime64_times_bound_the_window(self) -> None:
        rule = perf(metric="lag", direction="lower_is_better", threshold=1.0, min_samples=2)
        times = np.array(["2024-06-01T00:00", "NaT", "2024-06-02T00:00"], dtype="datetime64[us]")
        points = MetricSeries(np.array([0.5, 0.7, 0.9]), times)
        finding = evaluate_performance(rule, PerformanceInput(metric_points=points), now=NOW)
        assert finding.window.as_dict()["start"] == "2024-06-01T00:00:00+00:00"
        assert finding.window.as_dict()["end"] == "2024-06-02T00:00:00+00:00"


class TestMOfN:
    def test_three_of_five_over_a_sequence(self) -> None:
        rule = perf(threshold=0.85, n=5, m=3)
        breaches = [True, False, True, False, True, True, False, False, False]
        expected = [False, False, False, False, True, True, True, False, False]
        history: list[bool | None] = []
        holds: list[bool] = []
        for breach in breaches:
            data = PerformanceInput(outcomes_with_accuracy(0.8 if breach else 0.9), history=history)
            finding = evaluate_performance(rule, data, now=NOW)
            assert finding.breach is breach
            holds.append(finding.holds)
            history = [*history, finding.breach]
        assert holds == expected

    def test_summary_counts_breaches(self) -> None:
        data = PerformanceInput(outcomes_with_accuracy(0.8), history=[True, False, True, False])
        finding = evaluate_performance(perf(threshold=0.85, n=5, m=3), data, now=NOW)
        assert finding.summary.endswith("breached in 3 of the last 5 evaluations (needs 3 of 5)")

    def test_undecided_evaluations_are_skipped(self) -> None:
        assert m_of_n([True, None, True, None, False], True, 3) == [True, False, True]

    def test_consecutive_when_m_equals_n(self) -> None:
        rule = perf(threshold=0.85, n=2, m=2)
        data = PerformanceInput(outcomes_with_accuracy(0.8), history=[True, False])
        assert evaluate_performance(rule, data, now=NOW).status is RuleStatus.NOT_HOLDS
