"""The DAG the integration tests trigger: ``train`` returns its run's conf as its XCom.

It sleeps ``sleep_seconds`` and fails when ``fail`` is true, both read from the conf, so tests
can watch a run that lasts or one that fails.
"""

from __future__ import annotations

import time
from typing import Any

from airflow.sdk import dag, get_current_context, task


@dag(dag_id="retrigger_retrain", schedule=None, catchup=False, tags=["retrigger"])
def retrigger_retrain() -> None:
    """Stands in for a retraining pipeline."""

    @task
    def train() -> dict[str, Any]:
        """Return the run's conf, after the requested sleep, or fail when asked to."""
        conf = dict(get_current_context()["dag_run"].conf or {})
        time.sleep(float(conf.get("sleep_seconds", 0)))
        if conf.get("fail"):
            raise RuntimeError("failing because the run's conf asks for it")
        return conf

    train()


retrigger_retrain()
