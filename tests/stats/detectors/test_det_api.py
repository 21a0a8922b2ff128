"""Registry, parameter models (River's defaults, validation) and input hygiene."""

from __future__ import annotations

import ast
import doctest
import importlib
import inspect
import math
import pkgutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrigger.errors import InvalidConfig, InvalidSample
from retrigger.stats import detectors
from retrigger.stats.detectors import DetectionResult, UnknownPlugin

KEYS = ("ddm", "eddm", "adwin", "page_hinkley", "kswin", "hddm_a")
PACKAGE_DIR = Path(detectors.__file__).parent


def test_registry_lists_the_builtin_detectors() -> None:
    assert isinstance(detectors.BUILTIN_DETECTORS, tuple)
    assert tuple(cls.key for cls in detectors.BUILTIN_DETECTORS) == KEYS
    assert detectors.keys() == KEYS
    for cls in detectors.BUILTIN_DETECTORS:
        assert detectors.get(cls.key) is cls
        det = detectors.create(cls.key)
        assert type(det) is cls
        assert det.params == cls.params_model()


@pytest.mark.parametrize("key", ["", "ADWIN", "cusum", None, 3])
def test_unknown_key_raises_unknown_plugin(key: Any) -> None:
    with pytest.raises(UnknownPlugin) as info:
        detectors.get(key)
    assert isinstance(info.value, InvalidConfig)
    assert info.value.status_code == 422
    with pytest.raises(UnknownPlugin):
        detectors.create(key, {})


@pytest.mark.parametrize("key", KEYS)
def test_defaults_are_rivers(key: str, river) -> None:
    ours = detectors.get(key).params_model().model_dump()
    signature = inspect.signature(type(river(key)).__init__)
    for name, value in ours.items():
        assert signature.parameters[name].default == value, name


def test_create_accepts_models_mappings_and_overrides() -> None:
    model = detectors.ADWINParams(delta=0.01)
    assert detectors.create("adwin", model).params is model
    assert detectors.create("adwin", {"delta": 0.01}).params == model
    assert detectors.ADWIN(delta=0.01).params == model
    assert detectors.ADWIN(model, clock=8).params.clock == 8
    with pytest.raises(InvalidConfig):
        detectors.ADWIN(detectors.DDMParams())


@pytest.mark.parametrize(
    ("key", "params"),
    [
        ("ddm", {"warm_start": -1}),
        ("ddm", {"warning_threshold": 4.0}),
        ("ddm", {"drift_threshold": math.inf}),
        ("eddm", {"alpha": 0.8, "beta": 0.9}),
        ("eddm", {"beta": 0.0}),
        ("adwin", {"delta": 0.0}),
        ("adwin", {"delta": 1.0}),
        ("adwin", {"delta": math.nan}),
        ("adwin", {"clock": 0}),
        ("adwin", {"max_buckets": 0}),
        ("adwin", {"min_window_length": 0}),
        ("adwin", {"grace_period": -1}),
        ("page_hinkley", {"mode": "sideways"}),
        ("page_hinkley", {"alpha": 1.5}),
        ("page_hinkley", {"threshold": 0}),
        ("kswin", {"window_size": 50, "stat_size": 30}),
        ("kswin", {"alpha": 0}),
        ("kswin", {"stat_size": 0}),
        ("hddm_a", {"drift_confidence": 0.1, "warning_confidence": 0.01}),
        ("hddm_a", {"drift_confidence": 1.0}),
        ("adwin", {"unknown": 1}),
        ("adwin", {"clock": "often"}),
    ],
)
def test_invalid_params_raise_invalid_config(key: str, params: dict[str, Any]) -> None:
    with pytest.raises(InvalidConfig) as info:
        detectors.create(key, params)
    assert info.value.errors, "the offending field is named"


@pytest.mark.parametrize("params", [[("delta", 0.1)], "delta=0.1", 0.1])
def test_params_must_be_a_mapping(params: Any) -> None:
    with pytest.raises(InvalidConfig):
        detectors.create("adwin", params)
    state = detectors.create("adwin").to_state()
    with pytest.raises(InvalidConfig):
        detectors.restore({**state, "params": params})


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 1e101, "1", None, b"0", [1]])
def test_bad_scalar_raises_invalid_sample_and_changes_nothing(key: str, bad: Any) -> None:
    det = detectors.create(key, {"seed": 1} if key == "kswin" else {})
    det.update_many([0, 1, 0] * 20)
    before = det.to_state()
    with pytest.raises(InvalidSample):
        det.update(bad)
    assert det.to_state() == before


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize(
    "bad",
    [
        [0.0, 1.0, math.nan, 0.0],
        np.array([0.0, math.inf]),
        [[0.0, 1.0]],
        ["0", "1"],
        [0, None, 1],
        np.array([1 + 0j]),
        0.0,
    ],
)
def test_bad_batches_raise_invalid_sample_atomically(key: str, bad: Any) -> None:
    det = detectors.create(key, {"seed": 1} if key == "kswin" else {})
    before = det.to_state()
    with pytest.raises(InvalidSample):
        det.update_many(bad)
    assert det.to_state() == before


@pytest.mark.parametrize("key", ["ddm", "eddm", "hddm_a"])
@pytest.mark.parametrize("bad", [0.5, 2, -1, 1.0000001])
def test_binary_detectors_reject_non_binary_values(key: str, bad: float) -> None:
    det = detectors.create(key)
    with pytest.raises(InvalidSample):
        det.update(bad)
    with pytest.raises(InvalidSample):
        det.update_many([0, 1, bad])


@pytest.mark.parametrize("key", ["ddm", "eddm", "hddm_a"])
def test_binary_detectors_accept_bools_ints_and_floats(key: str) -> None:
    pattern = [False, True, False, False] * 50
    as_bool = detectors.create(key).update_many(np.array(pattern))
    as_int = detectors.create(key).update_many([int(v) for v in pattern])
    as_float = detectors.create(key).update_many([float(v) for v in pattern])
    assert as_bool == as_int == as_float
    det = detectors.create(key)
    for v in (True, np.bool_(False), 1, np.int8(0), 1.0, np.float32(0.0)):
        det.update(v)


@pytest.mark.parametrize("key", KEYS)
def test_empty_batch_is_a_no_op(key: str) -> None:
    det = detectors.create(key, {"seed": 1} if key == "kswin" else {})
    before = det.to_state()
    assert det.update_many([]) == DetectionResult([], [])
    assert det.update_many(np.array([], dtype=np.float64)) == DetectionResult()
    assert det.to_state() == before


@pytest.mark.parametrize("key", KEYS)
def test_update_returns_the_drift_flag_and_flags_clear_next_update(key: str, stream) -> None:
    det = detectors.create(key, {"seed": 0} if key == "kswin" else {})
    binary = key in {"ddm", "eddm", "hddm_a"}
    xs = stream("bern_abrupt" if binary else "gauss_abrupt", 0, 3000).tolist()
    returned = [det.update(x) for x in xs]
    first = returned.index(True)
    again = detectors.create(key, {"seed": 0} if key == "kswin" else {})
    again.update_many(xs[: first + 1])
    assert again.drift_detected
    again.update_many(xs[first + 1 : first + 2])
    assert again.drift_detected == returned[first + 1]


def test_warnings_are_empty_for_detectors_without_a_warning_zone(stream) -> None:
    xs = stream("gauss_abrupt", 0, 3000)
    for key in ("adwin", "page_hinkley", "kswin"):
        assert not detectors.get(key).has_warnings
        assert detectors.create(key).update_many(xs).warnings == []


def _modules() -> list[str]:
    return [f"{detectors.__name__}.{m.name}" for m in pkgutil.iter_modules([str(PACKAGE_DIR)])]


@pytest.mark.parametrize("module", [detectors.__name__, *_modules()])
def test_doctests_pass(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_public_classes_have_numpy_docstrings_with_references_and_examples() -> None:
    for cls in detectors.BUILTIN_DETECTORS:
        doc = inspect.getdoc(cls) or ""
        for section in ("Parameters", "References", "Examples"):
            assert f"{section}\n---" in doc, (cls.key, section)


def test_package_imports_only_numpy_scipy_pydantic_and_retrigger_errors() -> None:
    allowed_roots = {"numpy", "scipy", "pydantic", "retrigger", "__future__"}
    for path in PACKAGE_DIR.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                root = name.split(".")[0]
                stdlib = root in __import__("sys").stdlib_module_names
                assert stdlib or root in allowed_roots, (path.name, name)
                if root == "retrigger":
                    assert name == "retrigger.errors", (path.name, name)


def test_modules_are_reasonably_sized() -> None:
    for path in PACKAGE_DIR.glob("*.py"):
        lines = len(path.read_text().splitlines())
        assert 30 <= lines <= 320, (path.name, lines)
