"""Durations and windows: the one syntax, its canonical form, and its pydantic field types."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from retrigger.policies.durations import (
    MAX_DURATION,
    CountWindow,
    Duration,
    DurationError,
    SinceRetrainWindow,
    TimeWindow,
    Window,
    format_duration,
    parse_duration,
    parse_window,
)


class _Model(BaseModel):
    duration: Duration
    window: Window


class TestParseDuration:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("30s", timedelta(seconds=30)),
            ("30m", timedelta(minutes=30)),
            ("24h", timedelta(hours=24)),
            ("7d", timedelta(days=7)),
            ("2w", timedelta(weeks=2)),
            ("1d12h", timedelta(days=1, hours=12)),
            ("1w2d3h4m5s", timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5)),
            (" 90m ", timedelta(minutes=90)),
        ],
    )
    def test_parses_units_and_combinations(self, text: str, expected: timedelta) -> None:
        assert parse_duration(text) == expected

    @pytest.mark.parametrize("text", ["", "7", "d", "7x", "-1d", "1.5h", "12h1d", "1d1d", "7 d"])
    def test_rejects_garbage_with_the_syntax(self, text: str) -> None:
        with pytest.raises(DurationError, match="largest first"):
            parse_duration(text)

    @pytest.mark.parametrize("text", ["0s", "0d", "0w0d"])
    def test_rejects_zero(self, text: str) -> None:
        with pytest.raises(DurationError, match="greater than zero"):
            parse_duration(text)

    def test_rejects_more_than_the_maximum(self) -> None:
        with pytest.raises(DurationError, match="maximum"):
            parse_duration(f"{MAX_DURATION.days + 1}d")

    def test_rejects_non_strings(self) -> None:
        with pytest.raises(DurationError, match="string"):
            parse_duration(30)  # type: ignore[arg-type]


class TestFormatDuration:
    @pytest.mark.parametrize(
        ("value", "text"),
        [
            (timedelta(weeks=2), "14d"),
            (timedelta(hours=36), "1d12h"),
            (timedelta(minutes=90), "1h30m"),
            (timedelta(seconds=45), "45s"),
            (timedelta(days=30), "30d"),
        ],
    )
    def test_prints_canonically_without_weeks(self, value: timedelta, text: str) -> None:
        assert format_duration(value) == text

    def test_rejects_fractional_seconds(self) -> None:
        with pytest.raises(DurationError, match="whole number of seconds"):
            format_duration(timedelta(milliseconds=1500))

    @given(st.integers(min_value=1, max_value=int(MAX_DURATION.total_seconds())))
    def test_round_trips(self, seconds: int) -> None:
        value = timedelta(seconds=seconds)
        assert parse_duration(format_duration(value)) == value


class TestParseWindow:
    def test_duration_is_a_time_window(self) -> None:
        assert parse_window("7d") == TimeWindow(timedelta(days=7))

    def test_last_n_is_a_count_window(self) -> None:
        assert parse_window("last:10000") == CountWindow(10000)

    def test_since_retrain(self) -> None:
        assert parse_window("since_retrain") == SinceRetrainWindow()

    @pytest.mark.parametrize("text", ["last:", "last:0", "last:-5", "last:1e3", "yesterday"])
    def test_rejects_garbage(self, text: str) -> None:
        with pytest.raises(DurationError, match="window"):
            parse_window(text)

    def test_zero_duration_names_the_duration_problem(self) -> None:
        with pytest.raises(DurationError, match="greater than zero"):
            parse_window("0d")

    @pytest.mark.parametrize("text", ["14d", "1d12h", "last:500", "since_retrain"])
    def test_round_trips_canonical_text(self, text: str) -> None:
        assert str(parse_window(text)) == text


class TestDurationFields:
    def test_validates_to_typed_values(self) -> None:
        model = _Model.model_validate({"duration": "2w", "window": "last:10"})
        assert model.duration == timedelta(days=14)
        assert model.window == CountWindow(10)

    def test_serialises_canonical_strings_in_json(self) -> None:
        model = _Model.model_validate({"duration": "2w", "window": "36h"})
        assert model.model_dump(mode="json") == {"duration": "14d", "window": "1d12h"}

    def test_accepts_its_own_python_values(self) -> None:
        model = _Model.model_validate({"duration": timedelta(hours=1), "window": CountWindow(3)})
        assert _Model.model_validate(model.model_dump()) == model

    def test_error_names_field_and_problem(self) -> None:
        with pytest.raises(ValidationError) as exc:
            _Model.model_validate({"duration": "0m", "window": "soon"})
        errors = {e["loc"]: e for e in exc.value.errors()}
        assert errors[("duration",)]["type"] == "invalid_duration"
        assert "greater than zero" in errors[("duration",)]["msg"]
        assert errors[("window",)]["type"] == "invalid_window"

    def test_json_schema_documents_the_syntax(self) -> None:
        properties = _Model.model_json_schema()["properties"]
        assert properties["duration"]["type"] == "string"
        assert "last:10000" in properties["window"]["examples"]
