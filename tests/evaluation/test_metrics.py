"""Metrics against textbook formulas and scipy, on seeded data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from retrigger.errors import InvalidSample
from retrigger.evaluation import OutcomeWindow
from retrigger.evaluation import metrics as m


def _confusion(pred: np.ndarray, true: np.ndarray) -> tuple[int, int, int]:
    tp = int(((pred == 1) & (true == 1)).sum())
    fp = int(((pred == 1) & (true == 0)).sum())
    fn = int(((pred == 0) & (true == 1)).sum())
    return tp, fp, fn


class TestAccuracy:
    def test_equals_share_of_matches(self, rng: np.random.Generator) -> None:
        labels = rng.integers(0, 3, 500)
        preds = np.where(rng.random(500) < 0.7, labels, rng.integers(0, 3, 500))
        assert m.accuracy(preds, labels) == pytest.approx(np.mean(preds == labels))

    def test_same_class_written_differently_matches(self) -> None:
        preds = np.array([True, "1", 1.0, "false", 0], dtype=object)
        labels = np.array([1, 1, "true", 0, "0"], dtype=object)
        assert m.accuracy(preds, labels) == 1.0

    def test_missing_rows_are_dropped(self) -> None:
        preds = np.array(["cat", None, "dog", "dog"], dtype=object)
        labels = np.array(["cat", "dog", float("nan"), "cat"], dtype=object)
        assert m.accuracy(preds, labels) == 0.5

    def test_empty_is_undefined(self) -> None:
        assert m.accuracy(np.array([]), np.array([])) is None

    def test_length_mismatch_is_invalid(self) -> None:
        with pytest.raises(InvalidSample, match="differ in length"):
            m.accuracy(np.array([1, 0]), np.array([1]))


class TestPrecisionRecallF1:
    def test_match_confusion_formulas(self, rng: np.random.Generator) -> None:
        true = rng.integers(0, 2, 400)
        pred = np.where(rng.random(400) < 0.8, true, 1 - true)
        tp, fp, fn = _confusion(pred, true)
        assert m.precision(pred, true) == pytest.approx(tp / (tp + fp))
        assert m.recall(pred, true) == pytest.approx(tp / (tp + fn))
        p, r = tp / (tp + fp), tp / (tp + fn)
        assert m.f1(pred, true) == pytest.approx(2 * p * r / (p + r))

    def test_positive_label_selects_the_class(self) -> None:
        pred = np.array(["fraud", "fraud", "ok", "ok"], dtype=object)
        true = np.array(["fraud", "ok", "fraud", "ok"], dtype=object)
        assert m.precision(pred, true, "fraud") == 0.5
        assert m.recall(pred, true, "fraud") == 0.5

    def test_precision_undefined_without_positive_predictions(self) -> None:
        assert m.precision(np.zeros(10), np.ones(10)) is None

    def test_recall_undefined_without_positive_labels(self) -> None:
        assert m.recall(np.ones(10), np.zeros(10)) is None

    def test_f1_zero_when_only_precision_is_undefined(self) -> None:
        assert m.f1(np.zeros(10), np.ones(10)) == 0.0

    def test_f1_undefined_without_any_positive(self) -> None:
        assert m.f1(np.zeros(10), np.zeros(10)) is None


class TestAuc:
    def test_equals_mann_whitney_u(self, rng: np.random.Generator) -> None:
        labels = rng.integers(0, 2, 300)
        scores = rng.normal(labels * 0.8, 1.0)
        u = stats.mannwhitneyu(scores[labels == 1], scores[labels == 0]).statistic
        n1, n0 = int(labels.sum()), int((labels == 0).sum())
        assert m.auc(scores, labels) == pytest.approx(u / (n1 * n0))

    def test_ties_are_averaged(self, rng: np.random.Generator) -> None:
        labels = rng.integers(0, 2, 300)
        scores = np.round(rng.random(300) * 0.6 + labels * 0.2, 1)  # many ties
        u = stats.mannwhitneyu(scores[labels == 1], scores[labels == 0]).statistic
        n1, n0 = int(labels.sum()), int((labels == 0).sum())
        assert m.auc(scores, labels) == pytest.approx(u / (n1 * n0))

    def test_perfect_ranking_is_one(self) -> None:
        assert m.auc(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1])) == 1.0

    def test_one_class_is_undefined(self) -> None:
        assert m.auc(np.array([0.1, 0.9]), np.array([1, 1])) is None

    def test_rows_without_score_are_dropped(self) -> None:
        scores = np.array([0.1, np.nan, 0.9, 0.2])
        assert m.auc(scores, np.array([0, 1, 1, 1])) == 1.0


class TestRegressionMetrics:
    def test_rmse_and_mae_match_formulas(self, rng: np.random.Generator) -> None:
        labels = rng.normal(size=200)
        preds = labels + rng.normal(0, 0.5, 200)
        assert m.rmse(preds, labels) == pytest.approx(math.sqrt(np.mean((preds - labels) ** 2)))
        assert m.mae(preds, labels) == pytest.approx(np.mean(np.abs(preds - labels)))

    def test_non_numeric_values_are_invalid(self) -> None:
        with pytest.raises(InvalidSample, match="must be numbers"):
            m.rmse(np.array(["a", "b"], dtype=object), np.array([1.0, 2.0]))


class TestLogLoss:
    def test_matches_cross_entropy(self, rng: np.random.Generator) -> None:
        labels = rng.integers(0, 2, 200)
        scores = rng.uniform(0.01, 0.99, 200)
        expected = -np.mean(labels * np.log(scores) + (1 - labels) * np.log(1 - scores))
        assert m.log_loss(scores, labels) == pytest.approx(expected)

    def test_confident_mistake_is_clipped(self) -> None:
        value = m.log_loss(np.array([0.0]), np.array([1]))
        assert value == pytest.approx(-math.log(m.LOG_LOSS_EPS))

    def test_scores_outside_unit_interval_are_invalid(self) -> None:
        with pytest.raises(InvalidSample, match="probabilities"):
            m.log_loss(np.array([1.5]), np.array([1]))


class TestCompute:
    def test_reports_rows_used(self) -> None:
        window = OutcomeWindow(np.array([1, 0, 1, None], dtype=object), np.array([1, 0, 0, 1]))
        result = m.compute("accuracy", window)
        assert result.value == pytest.approx(2 / 3)
        assert result.n == 3

    def test_explains_an_undefined_metric(self) -> None:
        window = OutcomeWindow(np.ones(5), np.ones(5), scores=np.full(5, 0.7))
        result = m.compute("auc", window)
        assert result.value is None
        assert result.reason is not None
        assert "one class" in result.reason

    def test_score_metric_without_scores(self) -> None:
        result = m.compute("log_loss", OutcomeWindow(np.ones(5), np.ones(5)))
        assert result.value is None
        assert result.n == 0

    def test_every_built_in_metric_of_policies_is_computed(self) -> None:
        window = OutcomeWindow(np.array([0, 1, 1, 0]), np.array([0, 1, 0, 1]), np.full(4, 0.5))
        for metric in m.BUILTIN_METRICS:
            assert m.compute(metric, window).value is not None
