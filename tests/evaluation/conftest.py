"""Fixtures of the evaluation tests: seeded random generators."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A generator with a fixed seed (each test gets the same stream)."""
    return np.random.default_rng(20240603)
