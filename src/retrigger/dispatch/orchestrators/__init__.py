"""Orchestrator adapters, looked up by kind; imported lazily so the CLI stays light.

External packages add kinds through the entry-point group ``retrigger.orchestrators``.
"""

from __future__ import annotations

import importlib
import logging
from functools import cache
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Final

from retrigger.errors import InvalidConfig

if TYPE_CHECKING:
    from retrigger.dispatch.orchestrators.base import Orchestrator

log = logging.getLogger(__name__)

BUILTIN_ORCHESTRATORS: Final[dict[str, str]] = {
    "airflow": "retrigger.dispatch.orchestrators.airflow:AirflowOrchestrator",
    "kubeflow": "retrigger.dispatch.orchestrators.kubeflow:KubeflowOrchestrator",
    "argo": "retrigger.dispatch.orchestrators.argo:ArgoOrchestrator",
    "prefect": "retrigger.dispatch.orchestrators.prefect:PrefectOrchestrator",
    "dagster": "retrigger.dispatch.orchestrators.dagster:DagsterOrchestrator",
    "github_actions": "retrigger.dispatch.orchestrators.github_actions:GitHubActionsOrchestrator",
    "webhook": "retrigger.dispatch.orchestrators.webhook:WebhookOrchestrator",
    "fake": "retrigger.dispatch.orchestrators.fake:FakeOrchestrator",
}


def _load(path: str) -> type[Orchestrator]:
    module, _, name = path.partition(":")
    cls: type[Orchestrator] = getattr(importlib.import_module(module), name)
    return cls


@cache
def _plugins() -> dict[str, str]:
    found: dict[str, str] = {}
    for ep in entry_points(group="retrigger.orchestrators"):
        if ep.name in BUILTIN_ORCHESTRATORS:
            log.warning("orchestrator plugin %r shadows a built-in kind; ignored", ep.name)
            continue
        found[ep.name] = ep.value
    return found


def kinds() -> list[str]:
    """Every orchestrator kind known: built-in first, then plugins."""
    return [*BUILTIN_ORCHESTRATORS, *sorted(_plugins())]


def get_orchestrator(kind: str) -> type[Orchestrator]:
    """The adapter class of ``kind``; InvalidConfig (422) for an unknown kind."""
    path = BUILTIN_ORCHESTRATORS.get(kind) or _plugins().get(kind)
    if path is None:
        raise InvalidConfig(
            f"unknown orchestrator kind {kind!r}; known: {', '.join(kinds())}",
            errors=[{"loc": ["body", "kind"], "msg": "unknown kind", "type": "value_error"}],
        )
    return _load(path)
