"""Errors of the statistics package, on top of the service-wide tree in ``retrigger.errors``."""

from __future__ import annotations

from retrigger.errors import InvalidConfig, InvalidSample

__all__ = ["EmptySample", "InvalidConfig", "InvalidSample", "UnknownPlugin"]


class UnknownPlugin(InvalidConfig):
    """A drift-test key that no built-in test or installed plugin provides (422)."""


class EmptySample(InvalidSample):
    """A sample with no usable value: empty, or only NaN, infinities and nulls (422).

    ``evaluate_features`` reports such a feature as ``insufficient_data`` instead of failing
    the whole product; a single test raises it like any ``InvalidSample``. ``n_missing`` is
    how many values were dropped as missing.
    """

    def __init__(self, message: str, *, n_missing: int = 0) -> None:
        super().__init__(message)
        self.n_missing = n_missing
