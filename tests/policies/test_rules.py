"""Rule schemas: one class per rule type; errors are located at the field path."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from retrigger.errors import InvalidConfig
from retrigger.policies import validate_template
from retrigger.policies.detectors import ADWINParams, DDMParams, KSWINParams, PageHinkleyParams
from retrigger.policies.durations import CountWindow, SinceRetrainWindow, TimeWindow
from retrigger.policies.rules import (
    ConceptDriftRule,
    DataDriftRule,
    Direction,
    PerformanceRule,
    ScheduleRule,
    StalenessRule,
)

from .factories import rule


def _valid(*rules: dict[str, Any]) -> Any:
    return validate_template({"rules": list(rules)}).rules[0]


def _errors(*rules: dict[str, Any]) -> dict[tuple[Any, ...], dict[str, Any]]:
    with pytest.raises(InvalidConfig) as exc:
        validate_template({"rules": list(rules)})
    return {tuple(error["loc"]): error for error in exc.value.errors}


class TestPerformanceRule:
    def test_minimal_rule_gets_defaults(self) -> None:
        parsed = _valid(rule("performance"))
        assert isinstance(parsed, PerformanceRule)
        assert parsed.window == TimeWindow(timedelta(days=7))
        assert (parsed.min_samples, parsed.n, parsed.m) == (100, 1, 1)

    @pytest.mark.parametrize(
        ("metric", "direction"),
        [("accuracy", Direction.HIGHER_IS_BETTER), ("rmse", Direction.LOWER_IS_BETTER)],
    )
    def test_direction_inferred_from_builtin_metric(self, metric: str, direction: str) -> None:
        assert _valid(rule("performance", metric=metric)).effective_direction == direction

    def test_inferred_direction_is_not_marked_as_written(self) -> None:
        assert "direction" not in _valid(rule("performance")).model_fields_set

    def test_custom_metric_requires_direction(self) -> None:
        errors = _errors(rule("performance", metric="ndcg_at_10"))
        assert errors[("rules", 0, "direction")]["msg"] == (
            "required for the custom metric 'ndcg_at_10'"
        )

    def test_custom_metric_with_direction(self) -> None:
        parsed = _valid(rule("performance", metric="ndcg", direction="higher_is_better"))
        assert parsed.direction is Direction.HIGHER_IS_BETTER

    def test_direction_contradicting_builtin_metric(self) -> None:
        errors = _errors(rule("performance", metric="rmse", direction="higher_is_better"))
        assert errors[("rules", 0, "direction")]["type"] == "direction_mismatch"

    def test_relative_threshold_instead_of_absolute(self) -> None:
        parsed = _valid(rule("performance", threshold=None, relative_threshold=0.05))
        assert parsed.relative_threshold == 0.05

    def test_needs_one_threshold(self) -> None:
        errors = _errors(rule("performance", threshold=None))
        assert errors[("rules", 0, "threshold")]["type"] == "threshold_choice"

    def test_rejects_both_thresholds(self) -> None:
        errors = _errors(rule("performance", relative_threshold=0.1))
        assert ("rules", 0, "relative_threshold") in errors

    def test_m_greater_than_n(self) -> None:
        errors = _errors(rule("performance", m=4, n=3))
        assert errors[("rules", 0, "m")]["msg"] == "must not exceed n (3)"

    def test_negative_min_samples(self) -> None:
        assert ("rules", 0, "min_samples") in _errors(rule("performance", min_samples=-1))

    @pytest.mark.parametrize(
        ("text", "window"),
        [("last:10000", CountWindow(10000)), ("since_retrain", SinceRetrainWindow())],
    )
    def test_windows(self, text: str, window: object) -> None:
        assert _valid(rule("performance", window=text)).window == window

    def test_invalid_window(self) -> None:
        errors = _errors(rule("performance", window="last:0"))
        assert errors[("rules", 0, "window")]["type"] == "invalid_window"


class TestDataDriftRule:
    def test_defaults(self) -> None:
        parsed = _valid(rule("data_drift"))
        assert isinstance(parsed, DataDriftRule)
        assert (parsed.features, parsed.test, parsed.correction) == ("*", "auto", "bonferroni")
        assert (parsed.alpha, parsed.drift_share, parsed.reference) == (0.05, 0.5, "active")

    def test_feature_list_and_pinned_reference(self) -> None:
        parsed = _valid(rule("data_drift", features=["age", "country"], reference=4))
        assert (parsed.features, parsed.reference) == (["age", "country"], 4)

    @pytest.mark.parametrize("alpha", [0, 1, 1.5, -0.1])
    def test_alpha_outside_open_unit_interval(self, alpha: float) -> None:
        assert ("rules", 0, "alpha") in _errors(rule("data_drift", alpha=alpha))

    @pytest.mark.parametrize("share", [0, 1.01])
    def test_drift_share_outside_half_open_unit_interval(self, share: float) -> None:
        assert ("rules", 0, "drift_share") in _errors(rule("data_drift", drift_share=share))

    def test_drift_share_of_one_is_allowed(self) -> None:
        assert _valid(rule("data_drift", drift_share=1)).drift_share == 1

    def test_negative_min_samples(self) -> None:
        assert ("rules", 0, "min_samples") in _errors(rule("data_drift", min_samples=-5))

    def test_negative_min_effect(self) -> None:
        assert ("rules", 0, "min_effect") in _errors(rule("data_drift", min_effect=-0.1))

    def test_unknown_test(self) -> None:
        assert ("rules", 0, "test") in _errors(rule("data_drift", test="anderson"))

    def test_unknown_correction(self) -> None:
        assert ("rules", 0, "correction") in _errors(rule("data_drift", correction="holm"))

    def test_features_must_be_star_or_list(self) -> None:
        errors = _errors(rule("data_drift", features="age"))
        assert errors[("rules", 0, "features")]["msg"] == (
            "must be '*' or a non-empty list of feature names"
        )

    def test_duplicate_feature(self) -> None:
        errors = _errors(rule("data_drift", features=["a", "b", "a"]))
        assert errors[("rules", 0, "features", 2)]["msg"] == "duplicate feature 'a'"

    def test_empty_feature_list(self) -> None:
        assert ("rules", 0, "features") in _errors(rule("data_drift", features=[]))

    def test_reference_must_be_active_or_version(self) -> None:
        assert ("rules", 0, "reference") in _errors(rule("data_drift", reference="latest"))
        assert ("rules", 0, "reference") in _errors(rule("data_drift", reference=0))


class TestConceptDriftRule:
    def test_default_detector_is_adwin_with_river_defaults(self) -> None:
        parsed = _valid(rule("concept_drift"))
        assert isinstance(parsed, ConceptDriftRule)
        assert parsed.params == ADWINParams(
            delta=0.002, clock=32, max_buckets=5, min_window_length=5, grace_period=10
        )

    def test_params_validated_for_the_chosen_detector(self) -> None:
        parsed = _valid(rule("concept_drift", detector="ddm", params={"warm_start": 50}))
        assert parsed.params == DDMParams(warm_start=50, warning_threshold=2.0, drift_threshold=3.0)

    def test_page_hinkley_defaults(self) -> None:
        parsed = _valid(rule("concept_drift", detector="page_hinkley"))
        assert parsed.params == PageHinkleyParams(
            min_instances=30, delta=0.005, threshold=50.0, alpha=0.9999, mode="both"
        )

    def test_param_of_another_detector_is_unknown(self) -> None:
        errors = _errors(rule("concept_drift", detector="ddm", params={"delta": 0.01}))
        assert errors[("rules", 0, "params", "delta")]["type"] == "extra_forbidden"

    @pytest.mark.parametrize(
        ("detector", "params", "field"),
        [
            ("adwin", {"delta": 1.5}, "delta"),
            ("adwin", {"clock": 0}, "clock"),
            ("ddm", {"warning_threshold": 3.0, "drift_threshold": 2.0}, "drift_threshold"),
            ("eddm", {"alpha": 0.8, "beta": 0.9}, "beta"),
            ("page_hinkley", {"mode": "sideways"}, "mode"),
            ("kswin", {"window_size": 50, "stat_size": 50}, "stat_size"),
            ("kswin", {"alpha": 0}, "alpha"),
            (
                "hddm_a",
                {"drift_confidence": 0.01, "warning_confidence": 0.005},
                "warning_confidence",
            ),
        ],
    )
    def test_invalid_params_name_the_parameter(
        self, detector: str, params: dict[str, Any], field: str
    ) -> None:
        errors = _errors(rule("concept_drift", detector=detector, params=params))
        assert ("rules", 0, "params", field) in errors

    def test_kswin_seed_is_optional(self) -> None:
        parsed = _valid(rule("concept_drift", detector="kswin", params={"seed": 42}))
        assert parsed.params == KSWINParams(seed=42)

    def test_unknown_detector(self) -> None:
        assert ("rules", 0, "detector") in _errors(rule("concept_drift", detector="cusum"))


class TestStalenessRule:
    def test_max_age_parsed(self) -> None:
        parsed = _valid(rule("staleness", max_age="2w", min_new_samples=1000))
        assert isinstance(parsed, StalenessRule)
        assert (parsed.max_age, parsed.min_new_samples) == (timedelta(days=14), 1000)

    def test_max_age_required(self) -> None:
        errors = _errors({"id": "s", "type": "staleness"})
        assert errors[("rules", 0, "max_age")]["type"] == "missing"

    @pytest.mark.parametrize("max_age", ["0d", "-3d", "soon", 30])
    def test_rejects_bad_max_age(self, max_age: object) -> None:
        assert ("rules", 0, "max_age") in _errors(rule("staleness", max_age=max_age))


class TestScheduleRule:
    def test_cron_normalised_and_timezone_kept(self) -> None:
        parsed = _valid(rule("schedule", cron="0  3 * * MON", timezone="Europe/Berlin"))
        assert isinstance(parsed, ScheduleRule)
        assert (parsed.cron, parsed.timezone) == ("0 3 * * mon", "Europe/Berlin")

    def test_timezone_defaults_to_utc(self) -> None:
        assert _valid(rule("schedule")).timezone == "UTC"

    def test_invalid_cron_names_the_problem(self) -> None:
        errors = _errors(rule("schedule", cron="0 25 * * *"))
        assert errors[("rules", 0, "cron")]["msg"] == "hour: 25 is out of range 0-23"

    @pytest.mark.parametrize("zone", ["Mars/Olympus", "../etc/passwd", "", "Europe/Berlin "])
    def test_unknown_timezone_names_timezone(self, zone: str) -> None:
        errors = _errors(rule("schedule", timezone=zone))
        assert errors[("rules", 0, "timezone")]["type"] == "unknown_timezone"


class TestAlertRule:
    def test_matchers_with_operators(self) -> None:
        matchers = [
            {"name": "alertname", "value": "DataQuality"},
            {"name": "severity", "value": "warning|critical", "op": "=~"},
            {"name": "env", "value": "staging", "op": "!="},
        ]
        parsed = _valid(rule("alert", matchers=matchers, severity="critical"))
        assert [m.op.value for m in parsed.matchers] == ["=", "=~", "!="]
        assert (parsed.status, parsed.origin) == ("firing", "any")

    def test_invalid_regex(self) -> None:
        errors = _errors(rule("alert", matchers=[{"name": "x", "value": "(", "op": "!~"}]))
        assert errors[("rules", 0, "matchers", 0, "value")]["type"] == "invalid_regex"

    def test_regex_characters_are_fine_for_equality(self) -> None:
        assert (
            _valid(rule("alert", matchers=[{"name": "x", "value": "("}])).matchers[0].value == "("
        )

    def test_unknown_operator(self) -> None:
        errors = _errors(rule("alert", matchers=[{"name": "x", "value": "y", "op": "=="}]))
        assert ("rules", 0, "matchers", 0, "op") in errors

    def test_invalid_label_name(self) -> None:
        errors = _errors(rule("alert", matchers=[{"name": "1x", "value": "y"}]))
        assert ("rules", 0, "matchers", 0, "name") in errors

    def test_needs_a_matcher(self) -> None:
        assert ("rules", 0, "matchers") in _errors(rule("alert", matchers=[]))


class TestRuleUnion:
    def test_unknown_type_names_type(self) -> None:
        errors = _errors({"id": "x", "type": "vibes"})
        assert "unknown value 'vibes'" in errors[("rules", 0, "type")]["msg"]

    def test_missing_type(self) -> None:
        assert ("rules", 0, "type") in _errors({"id": "x"})

    def test_unknown_field_is_forbidden(self) -> None:
        errors = _errors(rule("staleness", max_agee="3d"))
        assert errors[("rules", 0, "max_agee")]["msg"] == "unknown field 'max_agee'"

    @pytest.mark.parametrize("rule_id", ["Bad", "has space", "", "-x", "x" * 64])
    def test_invalid_id(self, rule_id: str) -> None:
        assert ("rules", 0, "id") in _errors(rule("staleness", id=rule_id))

    def test_error_in_later_rule_has_its_index(self) -> None:
        errors = _errors(rule("staleness", id="a"), rule("staleness", id="b", max_age="0s"))
        assert list(errors) == [("rules", 1, "max_age")]
