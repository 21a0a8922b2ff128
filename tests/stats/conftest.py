"""Fixtures for the statistics tests: seeded random generators, nothing else."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A generator with a fixed seed (each test gets the same stream)."""
    return np.random.default_rng(20240611)


@pytest.fixture
def make_rng() -> Callable[[int], np.random.Generator]:
    """Factory of seeded generators for tests that need several independent streams."""
    return np.random.default_rng
