"""Locating pydantic errors inside the submitted document."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from retrigger.policies.problems import errors_from
from retrigger.policies.rules import Rule

_RULES: TypeAdapter[Any] = TypeAdapter(list[Rule])


def _locs(document: Any) -> list[list[Any]]:
    with pytest.raises(ValidationError) as exc:
        _RULES.validate_python(document)
    return [error["loc"] for error in errors_from(exc.value, document)]


class TestErrorsFrom:
    def test_union_tags_are_dropped(self) -> None:
        document = [{"id": "d", "type": "data_drift", "alpha": 2}]
        assert _locs(document) == [[0, "alpha"]]

    def test_missing_fields_are_named(self) -> None:
        assert _locs([{"id": "s", "type": "staleness"}]) == [[0, "max_age"]]

    def test_invalid_tag_points_at_the_discriminator(self) -> None:
        assert _locs([{"id": "s", "type": "nope"}]) == [[0, "type"]]

    def test_nested_tags_and_keys(self) -> None:
        document = [
            {"id": "c", "type": "concept_drift", "detector": "kswin", "params": {"alpha": 2}}
        ]
        assert _locs(document) == [[0, "params", "alpha"]]

    def test_duplicates_are_merged(self) -> None:
        document = [{"id": "s", "type": "staleness", "max_age": "1d", "x": 1, "y": 2}]
        assert _locs(document) == [[0, "x"], [0, "y"]]
