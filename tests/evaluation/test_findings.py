"""Findings stay JSON-safe whatever their details hold."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum

import numpy as np

from retrigger.evaluation import Finding, FindingWindow, RuleStatus
from retrigger.evaluation.findings import json_safe


class _Colour(StrEnum):
    RED = "red"


class TestJsonSafe:
    def test_non_finite_floats_become_null(self) -> None:
        assert json_safe([np.nan, float("inf"), np.float32(-np.inf), 1.5]) == [
            None,
            None,
            None,
            1.5,
        ]

    def test_numpy_values_become_python(self) -> None:
        out = json_safe({"a": np.int64(3), "b": np.bool_(True), "c": np.array([1.0, np.nan])})
        assert out == {"a": 3, "b": True, "c": [1.0, None]}

    def test_times_become_utc_iso(self) -> None:
        berlin = timezone(timedelta(hours=2))
        assert json_safe(datetime(2024, 6, 3, 3, 0, tzinfo=berlin)) == "2024-06-03T01:00:00+00:00"

    def test_enums_become_values(self) -> None:
        assert json_safe({_Colour.RED: _Colour.RED}) == {"red": "red"}

    def test_datetime64_becomes_utc_iso(self) -> None:
        assert json_safe(np.datetime64("2024-06-03T01:00")) == "2024-06-03T01:00:00+00:00"
        assert json_safe(np.datetime64("NaT")) is None


class TestFinding:
    def test_as_dict_is_strict_json(self) -> None:
        finding = Finding(
            "r",
            "performance",
            RuleStatus.HOLDS,
            "s",
            {"value": np.float64("nan"), "at": datetime(2024, 1, 1, tzinfo=UTC)},
            breach=True,
            window=FindingWindow(datetime(2024, 1, 1, tzinfo=UTC), None, 3),
        )
        data = json.loads(json.dumps(finding.as_dict(), allow_nan=False))
        assert data["details"] == {"value": None, "at": "2024-01-01T00:00:00+00:00"}
        assert data["window"] == {"start": "2024-01-01T00:00:00+00:00", "end": None, "n": 3}
