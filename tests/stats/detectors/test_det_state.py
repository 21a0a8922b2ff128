"""JSON state: a restored detector continues a stream exactly like an uninterrupted one."""

from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import pytest

from retrigger.errors import InvalidConfig
from retrigger.stats import detectors

SETUPS: list[tuple[str, dict[str, Any], str]] = [
    ("ddm", {}, "bern_abrupt"),
    ("ddm", {"warm_start": 3, "drift_threshold": 2.0}, "bern_rare"),
    ("eddm", {"alpha": 0.8, "beta": 0.75}, "bern_abrupt"),
    ("eddm", {}, "bern_gradual"),
    ("hddm_a", {"two_sided_test": True}, "bern_abrupt"),
    ("adwin", {}, "gauss_abrupt"),
    ("adwin", {"clock": 5, "max_buckets": 2, "delta": 0.1}, "gauss_gradual"),
    ("page_hinkley", {}, "gauss_abrupt"),
    ("page_hinkley", {"threshold": 5.0}, "gauss_none"),
    ("kswin", {"seed": 3}, "gauss_scale"),
    ("kswin", {}, "gauss_abrupt"),  # seed=None: the RNG state travels in the document
]
IDS = [f"{k}-{json.dumps(p)}-{s}" for k, p, s in SETUPS]


def _json_trip(state: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(state, allow_nan=False))
    return out


def _cuts(drifts: list[int], n: int) -> list[int]:
    cuts = {0, 1, 2, 37, n // 3, n // 2 + 5, n - 1, n}
    for d in drifts[:3]:
        cuts |= {d, d + 1, max(d - 1, 0)}
    return sorted(c for c in cuts if 0 <= c <= n)


@pytest.mark.parametrize(("key", "params", "name"), SETUPS, ids=IDS)
def test_round_trip_mid_stream_equals_uninterrupted(
    key: str, params: dict[str, Any], name: str, stream
) -> None:
    n = 1500 if key == "kswin" else 4000
    xs = stream(name, 5, n)
    origin = detectors.create(key, params)
    start = _json_trip(origin.to_state())  # pins the RNG of seed=None KSWIN for every run
    full = detectors.restore(start).update_many(xs)
    if key != "page_hinkley" or name != "gauss_none":
        assert full.drifts, "setup should produce at least one drift"
    for cut in _cuts(full.drifts, n):
        first = detectors.restore(start)
        head = first.update_many(xs[:cut])
        state = _json_trip(first.to_state())
        second = detectors.restore(state)
        assert second.to_state() == state
        assert type(second) is type(first)
        assert second.drift_detected == first.drift_detected
        assert second.warning_detected == first.warning_detected
        tail = second.update_many(xs[cut:])
        first.update_many(xs[cut:])
        assert head.drifts + [cut + i for i in tail.drifts] == full.drifts
        assert head.warnings + [cut + i for i in tail.warnings] == full.warnings
        assert second.to_state() == first.to_state()


@pytest.mark.parametrize(("key", "params", "name"), SETUPS, ids=IDS)
def test_round_trip_through_scalar_updates(
    key: str, params: dict[str, Any], name: str, stream, one_by_one
) -> None:
    xs = stream(name, 9, 700).tolist()
    start = _json_trip(detectors.create(key, params).to_state())
    expected = one_by_one(detectors.restore(start), xs)
    det = detectors.restore(start)
    drifts: list[int] = []
    warnings: list[int] = []
    for i, x in enumerate(xs):
        if i % 97 == 13:
            det = detectors.restore(_json_trip(det.to_state()))
        det.update(x)
        drifts += [i] if det.drift_detected else []
        warnings += [i] if det.warning_detected else []
    assert (drifts, warnings) == expected


def test_state_document_layout() -> None:
    det = detectors.create("ddm")
    det.update_many([0, 1] * 40)
    state = det.to_state()
    assert set(state) == {"detector", "format", "params", "flags", "stats"}
    assert state["detector"] == "ddm"
    assert state["format"] == detectors.STATE_FORMAT
    assert state["params"] == {"warm_start": 30, "warning_threshold": 2.0, "drift_threshold": 3.0}
    assert set(state["flags"]) == {"drift", "warning"}
    assert json.loads(json.dumps(state, allow_nan=False)) == state


def test_fresh_states_have_no_infinities() -> None:
    for cls in detectors.BUILTIN_DETECTORS:
        json.dumps(cls().to_state(), allow_nan=False)


def _tamper(state: dict[str, Any], path: list[Any], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(state)
    node = out
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return out


@pytest.mark.parametrize(
    ("key", "path", "value"),
    [
        ("ddm", ["detector"], "eddm"),
        ("ddm", ["format"], 99),
        ("ddm", ["flags"], {"drift": 1, "warning": False}),
        ("ddm", ["params", "warm_start"], -1),
        ("ddm", ["params", "bogus"], 1),
        ("ddm", ["stats", "p"], 1.5),
        ("ddm", ["stats", "n"], "many"),
        ("eddm", ["stats", "last_error"], 10**6),
        ("hddm_a", ["stats", "low_n"], 0),
        ("adwin", ["stats", "rows"], [[1.0, 2.0]]),
        ("adwin", ["stats", "extra"], 1),
        ("page_hinkley", ["stats", "mean"], None),
        ("kswin", ["stats", "window"], [1.0] * 101),
        ("kswin", ["stats", "rng", "internal"], [0] * 624 + [10_000]),
    ],
)
def test_invalid_states_are_rejected(key: str, path: list[Any], value: Any) -> None:
    det = detectors.create(key, {"seed": 1} if key == "kswin" else {})
    det.update_many(np.random.default_rng(0).integers(0, 2, 300))
    with pytest.raises(InvalidConfig):
        detectors.restore(_tamper(det.to_state(), path, value))


def test_from_state_checks_the_class() -> None:
    state = detectors.create("adwin").to_state()
    with pytest.raises(InvalidConfig):
        detectors.DDM.from_state(state)
    with pytest.raises(InvalidConfig):
        detectors.restore(["not", "a", "mapping"])  # type: ignore[arg-type]
    assert isinstance(detectors.ADWIN.from_state(state), detectors.ADWIN)


@pytest.mark.parametrize("cls", detectors.BUILTIN_DETECTORS, ids=lambda c: c.key)
def test_reset_restores_a_fresh_detector(cls: Any, stream) -> None:
    params = {"seed": 4} if cls.key == "kswin" else {}
    kind = "bern_abrupt" if cls.binary else "gauss_abrupt"
    xs = stream(kind, 2, 1200)
    det = cls(params)
    det.update_many(xs)
    det.reset()
    assert det.to_state() == cls(params).to_state()
    assert det.update_many(xs) == cls(params).update_many(xs)
