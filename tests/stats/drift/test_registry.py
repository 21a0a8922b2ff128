"""The registry: built-ins by key, UnknownPlugin, entry-point plugins loaded on demand."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pytest

from retrigger.stats.drift import BUILTIN_DRIFT_TESTS, DriftTestRegistry, drift_tests
from retrigger.stats.drift.ks import KSTest
from retrigger.stats.drift.linf import LinfTest
from retrigger.stats.errors import InvalidConfig, UnknownPlugin


class HalfLinf(LinfTest):
    """A plugin: L-infinity with a stricter default."""

    key = "half_linf"
    default_min_effect = 0.05


@dataclass
class FakeEntryPoint:
    name: str
    target: Any

    def load(self) -> Any:
        if isinstance(self.target, Exception):
            raise self.target
        return self.target


def test_builtin_keys() -> None:
    assert set(drift_tests.keys()) >= {
        "ks",
        "wasserstein",
        "psi",
        "jensen_shannon",
        "hellinger",
        "chi2",
        "linf",
        "z",
    }
    assert len({cls.key for cls in BUILTIN_DRIFT_TESTS}) == len(BUILTIN_DRIFT_TESTS)


def test_unknown_key_raises_unknown_plugin() -> None:
    with pytest.raises(UnknownPlugin) as info:
        drift_tests.get("anderson")
    assert isinstance(info.value, InvalidConfig)
    assert info.value.status_code == 422
    assert info.value.errors[0]["loc"] == ["test"]


def test_bad_params_raise_invalid_config() -> None:
    with pytest.raises(InvalidConfig) as info:
        drift_tests.create("psi", {"bins": 1})
    assert info.value.errors[0]["loc"] == ["bins"]
    with pytest.raises(InvalidConfig):
        drift_tests.create("ks", {"unknown": 1})


def test_entry_points_load_on_demand_and_broken_ones_are_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[str] = []

    def entry_points(group: str) -> Iterable[FakeEntryPoint]:
        calls.append(group)
        return [
            FakeEntryPoint("half_linf", HalfLinf),
            FakeEntryPoint("broken", ImportError("no module named nowhere")),
            FakeEntryPoint("not_a_test", object),
            FakeEntryPoint("clash", KSTest),
        ]

    registry = DriftTestRegistry(BUILTIN_DRIFT_TESTS, entry_points=entry_points)
    assert registry.get("ks") is KSTest
    assert calls == []  # built-ins never trigger plugin loading
    with caplog.at_level(logging.WARNING):
        assert registry.get("half_linf") is HalfLinf
    assert calls == ["retrigger.drift_tests"]
    assert "broken" in caplog.text
    assert "not_a_test" in caplog.text
    assert "clash" in caplog.text
    assert "half_linf" in registry.keys()
    assert calls == ["retrigger.drift_tests"]  # loaded once
    with pytest.raises(UnknownPlugin):
        registry.get("broken")


def test_duplicate_builtins_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        DriftTestRegistry([KSTest, KSTest], group=None)
