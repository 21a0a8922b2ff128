"""A stand-in retraining pipeline for the README walkthrough.

retrigger triggers it with the policy's parameters and its context (product, decision, run,
reasons, data window, reference version) in the run's conf; a real DAG would read the window,
train, evaluate and register the model, then report the model version back to retrigger.
"""

from __future__ import annotations

import json
from typing import Any

from airflow.sdk import dag, get_current_context, task


@dag(dag_id="retrain_fraud_scorer", schedule=None, catchup=False, tags=["retrigger"])
def retrain_fraud_scorer() -> None:
    """Prepare the data window, train, and hand back what a registry would record."""

    @task
    def prepare() -> dict[str, Any]:
        conf = dict(get_current_context()["dag_run"].conf or {})
        context = conf.get("retrigger", {})
        print("retraining", conf.get("product"), "because:", conf.get("reasons"))
        print("data window:", context.get("window_start"), "->", context.get("window_end"))
        return conf

    @task
    def train(conf: dict[str, Any]) -> dict[str, Any]:
        print("training on", json.dumps(conf)[:500])
        return {"model_version": f"{conf.get('product')}-run-{conf.get('run_id')}"}

    train(prepare())


retrain_fraud_scorer()
