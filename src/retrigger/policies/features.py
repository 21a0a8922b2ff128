"""Checks of data-drift rules against a product's feature schema (names and kinds).

Pure: the service passes the schema as ``{feature name: kind}`` and renders the returned errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

from retrigger.policies.problems import ErrorDict, problem
from retrigger.policies.rules import DataDriftRule, DriftTestKey
from retrigger.policies.schemas import PolicyBody

__all__ = ["TEST_KINDS", "FeatureKind", "check_against_schema"]


class FeatureKind(StrEnum):
    """Kinds of product features, as in the product's feature schema."""

    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    BOOLEAN = "boolean"


_ALL: Final = frozenset(FeatureKind)
_DISCRETE: Final = frozenset({FeatureKind.CATEGORICAL, FeatureKind.BOOLEAN})

TEST_KINDS: Final[Mapping[DriftTestKey, frozenset[FeatureKind]]] = {
    DriftTestKey.AUTO: _ALL,
    DriftTestKey.KS: frozenset({FeatureKind.NUMERIC}),
    DriftTestKey.WASSERSTEIN: frozenset({FeatureKind.NUMERIC}),
    DriftTestKey.CHI2: _DISCRETE,
    DriftTestKey.LINF: _DISCRETE,
    DriftTestKey.Z: frozenset({FeatureKind.BOOLEAN}),
    DriftTestKey.PSI: _ALL,
    DriftTestKey.JENSEN_SHANNON: _ALL,
    DriftTestKey.HELLINGER: _ALL,
}
"""Feature kinds each test can compare (binned distances accept every kind)."""


def check_against_schema(policy: PolicyBody, features: Mapping[str, str]) -> list[ErrorDict]:
    """Errors for data-drift rules naming unknown features or testing them with the wrong test.

    ``loc`` is relative to ``policy`` (``["rules", 1, "features", 0]``); an empty list means the
    policy fits the schema. Kinds are ``numeric``, ``categorical`` or ``boolean``.
    """
    kinds = {name: FeatureKind(kind) for name, kind in features.items()}
    errors: list[ErrorDict] = []
    for index, rule in enumerate(policy.rules):
        if isinstance(rule, DataDriftRule):
            errors.extend(_rule_errors(rule, ("rules", index), kinds))
    return errors


def _rule_errors(
    rule: DataDriftRule, loc: tuple[str | int, ...], kinds: Mapping[str, FeatureKind]
) -> list[ErrorDict]:
    errors: list[ErrorDict] = []
    if rule.features == "*":
        if not kinds:
            message = f"rule {rule.id!r} selects every feature, but the product's schema has none"
            errors.append(problem((*loc, "features"), "no_features", message))
        selected = list(kinds)
    else:
        selected = []
        for position, name in enumerate(rule.features):
            if name in kinds:
                selected.append(name)
            else:
                message = f"unknown feature {name!r}: not in the product's feature schema"
                errors.append(problem((*loc, "features", position), "unknown_feature", message))
    accepted = TEST_KINDS[rule.test]
    wrong = [name for name in selected if kinds[name] not in accepted]
    if wrong:
        kinds_text = ", ".join(sorted(kind.value for kind in accepted))
        listed = ", ".join(f"{name} ({kinds[name].value})" for name in wrong)
        message = f"{rule.test.value} only tests {kinds_text} features; not {listed}"
        errors.append(problem((*loc, "test"), "test_incompatible", message))
    return errors
