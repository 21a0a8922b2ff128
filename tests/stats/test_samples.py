"""Input hygiene: missing values are counted and dropped, wrong kinds and empty input refused."""

from __future__ import annotations

import numpy as np
import pytest

from retrigger.stats.errors import EmptySample, InvalidSample
from retrigger.stats.samples import (
    MAX_ABS,
    FeatureKind,
    category_counts,
    infer_kind,
    numeric_sample,
)


class TestNumericSample:
    def test_counts_and_drops_nan_and_infinities(self) -> None:
        sample = numeric_sample([1.0, np.nan, 2.0, np.inf, -np.inf, 3.0])
        assert sample.values.tolist() == [1.0, 2.0, 3.0]
        assert sample.n_missing == 3
        assert sample.missing_share == 0.5

    def test_out_of_range_magnitudes_count_as_missing(self) -> None:
        sample = numeric_sample([1.0, MAX_ABS * 10, -MAX_ABS * 10])
        assert sample.n == 1
        assert sample.n_missing == 2

    def test_none_in_object_input_is_missing(self) -> None:
        assert numeric_sample([1, None, 2.5]).n_missing == 1

    @pytest.mark.parametrize("values", [[], [np.nan, np.nan], [None], [np.inf]])
    def test_empty_after_cleaning_raises(self, values: list[object]) -> None:
        with pytest.raises(EmptySample):
            numeric_sample(values)

    @pytest.mark.parametrize("values", [["a", "b"], [True, False], [[1.0, 2.0]], 3.0, [1, "x"]])
    def test_wrong_kind_or_shape_raises(self, values: object) -> None:
        with pytest.raises(InvalidSample):
            numeric_sample(values)

    def test_values_are_read_only_and_sorted_view_cached(self) -> None:
        sample = numeric_sample([3.0, 1.0, 2.0])
        assert not sample.values.flags.writeable
        assert sample.sorted.tolist() == [1.0, 2.0, 3.0]
        assert sample.sorted is sample.sorted


class TestCategoryCounts:
    def test_counts_labels_and_missing(self) -> None:
        labels, counts, missing = category_counts(
            ["b", "a", None, "b", float("nan")], kind=FeatureKind.CATEGORICAL
        )
        assert labels == ("a", "b")
        assert counts.tolist() == [1, 2]
        assert missing == 2

    def test_integral_numbers_become_integer_labels(self) -> None:
        labels, _, _ = category_counts([1, 2.0, 2.5], kind=FeatureKind.CATEGORICAL)
        assert labels == ("1", "2", "2.5")

    def test_boolean_accepts_bools_01_and_words(self) -> None:
        labels, counts, missing = category_counts(
            [True, 0, 1.0, "False", None], kind=FeatureKind.BOOLEAN
        )
        assert labels == ("false", "true")
        assert counts.tolist() == [2, 2]
        assert missing == 1

    def test_boolean_has_both_labels_even_if_one_is_absent(self) -> None:
        labels, counts, _ = category_counts([True, True], kind=FeatureKind.BOOLEAN)
        assert labels == ("false", "true")
        assert counts.tolist() == [0, 2]

    @pytest.mark.parametrize("values", [[2, 1], ["maybe"], [0.5]])
    def test_boolean_rejects_other_values(self, values: list[object]) -> None:
        with pytest.raises(InvalidSample):
            category_counts(values, kind=FeatureKind.BOOLEAN)

    def test_all_missing_raises_empty(self) -> None:
        with pytest.raises(EmptySample) as info:
            category_counts([None, None], kind=FeatureKind.CATEGORICAL)
        assert info.value.n_missing == 2

    def test_unhashable_kind_of_value_is_refused(self) -> None:
        with pytest.raises(InvalidSample):
            category_counts(np.array([{"a": 1}], dtype=object), kind=FeatureKind.CATEGORICAL)


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        (np.array([True, False]), FeatureKind.BOOLEAN),
        ([1.5, 2.0], FeatureKind.NUMERIC),
        (["a"], FeatureKind.CATEGORICAL),
        ([None, "a"], FeatureKind.CATEGORICAL),
        ([None, True], FeatureKind.BOOLEAN),
        ([None, 3], FeatureKind.NUMERIC),
    ],
)
def test_infer_kind(values: object, kind: FeatureKind) -> None:
    assert infer_kind(values) is kind
