"""Streaming concept-drift detectors equivalent to River's, with JSON state and a registry.

Pure numpy/scipy: ``ddm``, ``eddm``, ``adwin``, ``page_hinkley``, ``kswin``, ``hddm_a``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from retrigger.errors import InvalidConfig

from ._base import MAX_ABS, STATE_FORMAT, DetectionResult, DetectorParams, DriftDetector
from .adwin import ADWIN, ADWINParams
from .ddm import DDM, DDMParams
from .eddm import EDDM, EDDMParams
from .hddm_a import HDDM_A, HDDMAParams
from .kswin import KSWIN, KSWINParams
from .page_hinkley import PageHinkley, PageHinkleyParams

__all__ = [
    "ADWIN",
    "BUILTIN_DETECTORS",
    "DDM",
    "EDDM",
    "HDDM_A",
    "KSWIN",
    "MAX_ABS",
    "STATE_FORMAT",
    "ADWINParams",
    "AnyDetector",
    "DDMParams",
    "DetectionResult",
    "DetectorParams",
    "DriftDetector",
    "EDDMParams",
    "HDDMAParams",
    "KSWINParams",
    "PageHinkley",
    "PageHinkleyParams",
    "UnknownPlugin",
    "create",
    "get",
    "keys",
    "restore",
]

AnyDetector = DriftDetector[Any, Any]


class UnknownPlugin(InvalidConfig):
    """No detector is registered under the requested key."""


BUILTIN_DETECTORS: tuple[type[AnyDetector], ...] = (DDM, EDDM, ADWIN, PageHinkley, KSWIN, HDDM_A)
"""The built-in detector classes, in documentation order; ``cls.key`` is the plugin key."""

_BY_KEY: dict[str, type[AnyDetector]] = {cls.key: cls for cls in BUILTIN_DETECTORS}


def keys() -> tuple[str, ...]:
    """Plugin keys of the built-in detectors."""
    return tuple(_BY_KEY)


def get(key: str) -> type[AnyDetector]:
    """The detector class registered under ``key`` (``UnknownPlugin`` otherwise)."""
    try:
        return _BY_KEY[key]
    except (KeyError, TypeError):
        raise UnknownPlugin(
            f"unknown drift detector {key!r}; known: {', '.join(_BY_KEY)}",
            errors=[{"loc": ["detector"], "msg": "unknown key", "input": repr(key)}],
        ) from None


def create(key: str, params: Mapping[str, Any] | DetectorParams | None = None) -> AnyDetector:
    """A fresh detector ``key`` with validated ``params`` (``InvalidConfig`` if rejected).

    >>> create("adwin", {"delta": 0.01}).params.delta
    0.01
    """
    return get(key)(params)


def restore(state: Mapping[str, Any]) -> AnyDetector:
    """Rebuild any built-in detector from its ``to_state()`` document."""
    if not isinstance(state, Mapping):
        raise InvalidConfig("detector state must be a mapping")
    return get(state.get("detector")).from_state(state)  # type: ignore[arg-type]
