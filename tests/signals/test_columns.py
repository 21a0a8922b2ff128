"""The column codec and the outcome join, without a database."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from retrigger.products.schemas import FeatureKind
from retrigger.signals import joining
from retrigger.signals.columns import (
    EncodedColumn,
    StoredColumn,
    concat,
    encode_columns,
    encode_rows,
    format_loc,
)
from retrigger.signals.errors import SignalRejected
from retrigger.signals.schemas import OutcomeIn, Task

FEATURES = [
    {"name": "x", "kind": "numeric", "min": 0},
    {"name": "c", "kind": "categorical"},
    {"name": "b", "kind": "boolean"},
]


def stored(encoded: list[EncodedColumn]) -> dict[str, StoredColumn]:
    return {e.feature: StoredColumn(str(e.kind), e.data, e.categories) for e in encoded}


class TestFormatLoc:
    @pytest.mark.parametrize(
        ("loc", "text"),
        [
            (["body", "rows", 3, "foo"], "rows[3].foo"),
            (["body", "columns", "foo", 7], "columns.foo[7]"),
            (["body", "points", 0, "value"], "points[0].value"),
            (["body", "time"], "time"),
        ],
    )
    def test_names_fields_like_the_docs(self, loc: list[str | int], text: str) -> None:
        assert format_loc(loc) == text


class TestRoundTrip:
    def test_rows_and_columns_decode_to_what_was_sent(self) -> None:
        rows = [{"x": 1, "c": "a", "b": True}, {"x": -2.5, "c": None}, {"b": False, "c": "b"}]
        encoded = encode_rows(rows, FEATURES)
        n, same = encode_columns(
            {"x": [1, -2.5, None], "c": ["a", None, "b"], "b": [True, None, False]}, FEATURES
        )
        assert n == 3
        assert [e.data for e in encoded] == [e.data for e in same]
        cols = stored(encoded)
        x = concat("x", FeatureKind.numeric, [(3, 0, cols["x"])])
        np.testing.assert_array_equal(x.values, [1.0, -2.5, np.nan])
        assert x.n_missing == 1
        b = concat("b", FeatureKind.boolean, [(3, 0, cols["b"])])
        np.testing.assert_array_equal(b.values, [1.0, np.nan, 0.0])
        c = concat("c", FeatureKind.categorical, [(3, 0, cols["c"])])
        assert c.present().tolist() == ["a", "b"]
        assert encoded[0].out_of_range == 1  # x < min

    def test_categories_merge_across_batches(self) -> None:
        _, first = encode_columns({"c": ["b", "a", "b"]}, FEATURES)
        _, second = encode_columns({"c": ["a", "z", None]}, FEATURES)
        col = concat(
            "c",
            FeatureKind.categorical,
            [(3, 1, stored(first)["c"]), (3, 0, None), (3, 0, stored(second)["c"])],
        )
        assert col.categories == ("b", "a", "z")
        labels = [col.categories[i] if i >= 0 else None for i in col.values]
        assert labels == ["a", "b", None, None, None, "a", "z", None]
        assert col.n_missing == 4

    def test_integer_beyond_float_range_is_refused(self) -> None:
        with pytest.raises(SignalRejected) as info:
            encode_columns({"x": [1, 10**400]}, FEATURES)
        assert info.value.errors[0]["loc"] == ["body", "columns", "x", 1]

    def test_error_list_is_capped(self) -> None:
        with pytest.raises(SignalRejected) as info:
            encode_columns({"x": ["bad"] * 500}, FEATURES)
        assert len(info.value.errors) == 50
        assert "and 499 more" in info.value.message


class TestJoin:
    NOW = datetime(2026, 11, 28, tzinfo=UTC)

    def test_class_keys_follow_the_drift_labels(self) -> None:
        assert joining.class_key(True) == "true"
        assert joining.class_key(1.0) == joining.class_key(1) == joining.class_key("1")
        assert joining.class_key(0.5) == "0.5"

    def test_error_by_task(self) -> None:
        assert joining.outcome_error(3, 1, None) == 2.0
        assert joining.outcome_error(3, 1, Task.classification) == 1.0
        assert joining.outcome_error("a", "a", None) == 0.0
        assert joining.outcome_error(None, 1, None) is None

    def test_corrected_label_recomputes_error_but_keeps_join_time(self) -> None:
        first = joining.apply(None, {"prediction": "a", "label": "b"}, task=None, now=self.NOW)
        assert first["error"] == 1.0
        assert first["joined_at"] == self.NOW
        later = datetime(2026, 11, 29, tzinfo=UTC)
        fixed = joining.apply(
            {**first, "detector_processed": True}, {"label": "a"}, task=None, now=later
        )
        assert fixed["error"] == 0.0
        assert fixed["joined_at"] == self.NOW
        assert fixed["detector_processed"] is True
        assert fixed["updated_at"] == later

    def test_merge_entries_later_fields_win(self) -> None:
        merged = joining.merge_entries(
            [
                OutcomeIn(prediction_id="p", prediction=1, score=0.4),
                OutcomeIn(prediction_id="p", label=0, score=0.6),
            ]
        )
        assert merged["p"]["prediction"] == 1
        assert merged["p"]["label"] == 0
        assert merged["p"]["score"] == 0.6
