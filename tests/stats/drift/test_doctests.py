"""The examples in the drift tests' docstrings run (they are part of the plugin contract)."""

from __future__ import annotations

import doctest
import importlib

import pytest

from retrigger.stats.drift import BUILTIN_DRIFT_TESTS


@pytest.mark.parametrize("module", sorted({cls.__module__ for cls in BUILTIN_DRIFT_TESTS}))
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
