"""Two-sample drift tests (reference profile vs current window), one plugin per test key.

Built-ins are listed explicitly in ``BUILTIN_DRIFT_TESTS``; ``drift_tests`` is the default
registry (built-ins plus entry-point plugins of group ``retrigger.drift_tests``).
"""

from __future__ import annotations

from retrigger.stats.drift.base import DriftParams, DriftTest
from retrigger.stats.drift.chi2 import Chi2Test
from retrigger.stats.drift.hellinger import HellingerTest
from retrigger.stats.drift.jensen_shannon import JensenShannonTest
from retrigger.stats.drift.ks import KSTest
from retrigger.stats.drift.linf import LinfTest
from retrigger.stats.drift.psi import PSITest
from retrigger.stats.drift.registry import ENTRY_POINT_GROUP, DriftTestRegistry
from retrigger.stats.drift.results import DriftResult, DriftStatus, Statistic
from retrigger.stats.drift.wasserstein import WassersteinTest
from retrigger.stats.drift.z import ZTest

BUILTIN_DRIFT_TESTS: tuple[type[DriftTest], ...] = (
    KSTest,
    WassersteinTest,
    PSITest,
    JensenShannonTest,
    HellingerTest,
    Chi2Test,
    LinfTest,
    ZTest,
)

drift_tests = DriftTestRegistry(BUILTIN_DRIFT_TESTS)

__all__ = [
    "BUILTIN_DRIFT_TESTS",
    "ENTRY_POINT_GROUP",
    "DriftParams",
    "DriftResult",
    "DriftStatus",
    "DriftTest",
    "DriftTestRegistry",
    "Statistic",
    "drift_tests",
]
