"""Registry of drift tests: the built-in tuple plus entry-point plugins, loaded on first need.

Third-party packages register a ``DriftTest`` subclass under the entry-point group
``retrigger.drift_tests`` (``name = "package.module:Class"``). Entry points are read the first
time a key is not found among the built-ins (or when all keys are listed); a plugin that fails
to import, is not a ``DriftTest`` or reuses a taken key is logged and skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from typing import Any, Protocol

from retrigger.stats.drift.base import DriftParams, DriftTest
from retrigger.stats.errors import UnknownPlugin

ENTRY_POINT_GROUP = "retrigger.drift_tests"

log = logging.getLogger(__name__)


class EntryPointLike(Protocol):
    """What the registry needs of an ``importlib.metadata.EntryPoint``."""

    name: str

    def load(self) -> Any: ...


def _installed(group: str) -> Iterable[EntryPointLike]:
    return metadata.entry_points(group=group)


class DriftTestRegistry:
    """Maps test keys to ``DriftTest`` classes; ``get`` raises ``UnknownPlugin`` (422)."""

    def __init__(
        self,
        builtins: Iterable[type[DriftTest]],
        *,
        group: str | None = ENTRY_POINT_GROUP,
        entry_points: Callable[[str], Iterable[EntryPointLike]] = _installed,
    ) -> None:
        self._tests: dict[str, type[DriftTest]] = {}
        for cls in builtins:
            if cls.key in self._tests:
                raise ValueError(f"duplicate built-in drift test key {cls.key!r}")
            self._tests[cls.key] = cls
        self._group = group
        self._entry_points = entry_points
        self._loaded = group is None

    def _load_plugins(self) -> None:
        if self._loaded or self._group is None:
            return
        self._loaded = True
        for entry in self._entry_points(self._group):
            try:
                cls = entry.load()
            except Exception:
                log.warning(
                    "drift test plugin %r failed to load; skipped", entry.name, exc_info=True
                )
                continue
            if not (isinstance(cls, type) and issubclass(cls, DriftTest)):
                log.warning("drift test plugin %r is not a DriftTest subclass; skipped", entry.name)
            elif getattr(cls, "key", None) in self._tests:
                log.warning("drift test plugin %r reuses the key %r; skipped", entry.name, cls.key)
            else:
                self._tests[cls.key] = cls

    def get(self, key: str) -> type[DriftTest]:
        """The test class registered under ``key``."""
        if key not in self._tests:
            self._load_plugins()
        try:
            return self._tests[key]
        except KeyError:
            known = ", ".join(sorted(self._tests))
            raise UnknownPlugin(
                f"unknown drift test {key!r}; known: {known}",
                errors=[{"loc": ["test"], "msg": f"unknown drift test {key!r}"}],
            ) from None

    def create(self, key: str, params: DriftParams | Mapping[str, Any] | None = None) -> DriftTest:
        """An instance of the test ``key`` with validated parameters."""
        return self.get(key)(params)

    def keys(self) -> tuple[str, ...]:
        """Every available key, plugins included, sorted."""
        self._load_plugins()
        return tuple(sorted(self._tests))
