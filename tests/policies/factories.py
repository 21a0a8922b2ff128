"""Valid policy documents to start tests from: plain functions returning fresh dicts."""

from __future__ import annotations

import copy
from typing import Any

TEMPLATE: dict[str, Any] = {
    "description": "Test standard for classifiers.",
    "rules": [
        {
            "id": "accuracy-drop",
            "type": "performance",
            "metric": "accuracy",
            "relative_threshold": 0.05,
            "n": 5,
            "m": 3,
        },
        {"id": "feature-drift", "type": "data_drift", "alpha": 0.05, "drift_share": 0.3},
        {"id": "error-stream", "type": "concept_drift", "detector": "adwin"},
        {"id": "staleness", "type": "staleness", "max_age": "30d"},
        {
            "id": "dq-alert",
            "type": "alert",
            "matchers": [{"name": "alertname", "value": "DataQualityDegraded"}],
        },
        {"id": "weekly", "type": "schedule", "cron": "0 3 * * mon", "timezone": "Europe/Berlin"},
    ],
    "inhibit": [{"source": "dq-alert", "targets": ["feature-drift", "accuracy-drop"]}],
    "guards": {"cooldown": "24h"},
    "target": {
        "connection": "airflow-prod",
        "pipeline": "retrain_classifier",
        "parameters": {"product": "{product}", "run": "{run_id}"},
    },
    "overridable": {
        "rules": {
            "staleness": {"max_age": {"min": "7d", "max": "60d"}},
            "feature-drift": {
                "alpha": {"min": 0.001, "max": 0.1},
                "test": {"allowed": ["auto", "ks", "psi"]},
                "features": "any",
                "drift_share": "locked",
            },
            "error-stream": {"params": {"delta": {"max": 0.01}}},
            "weekly": "any",
        },
        "guards": {"cooldown": {"min": "6h", "max": "7d"}, "mode": "any"},
        "target": {"pipeline": "any", "parameters": {"dataset": "any"}},
        "allow_extra_rules": True,
        "allow_disable": ["error-stream"],
    },
}


def template_body(**changes: Any) -> dict[str, Any]:
    """A valid template body (``tier-1-classifier``), with top-level keys replaced."""
    body = copy.deepcopy(TEMPLATE)
    body.update(copy.deepcopy(changes))
    return body


def product_body(**changes: Any) -> dict[str, Any]:
    """A valid templated product policy referencing ``tier-1-classifier@3``."""
    body: dict[str, Any] = {"template": "tier-1-classifier@3"}
    body.update(copy.deepcopy(changes))
    return body


def standalone_body(**changes: Any) -> dict[str, Any]:
    """A valid standalone product policy."""
    body: dict[str, Any] = {
        "rules": [
            {"id": "staleness", "type": "staleness", "max_age": "14d"},
            {"id": "monthly", "type": "schedule", "cron": "@monthly"},
        ],
        "guards": {"mode": "shadow"},
    }
    body.update(copy.deepcopy(changes))
    return body


def rule(type_: str, **fields: Any) -> dict[str, Any]:
    """A minimal valid rule of ``type_`` with ``fields`` added."""
    minimal: dict[str, dict[str, Any]] = {
        "performance": {"metric": "accuracy", "threshold": 0.9},
        "data_drift": {},
        "concept_drift": {},
        "staleness": {"max_age": "30d"},
        "schedule": {"cron": "@daily"},
        "alert": {"matchers": [{"name": "alertname", "value": "X"}]},
    }
    return {"id": "r", "type": type_, **minimal[type_], **fields}
