"""The code location the integration tests launch: job ``retrigger_retrain`` with one op, run by
the Dagster peer's own Python. ``sleep_seconds`` and ``fail`` in the op's config let tests watch
a run that lasts or one that fails.
"""

# no ``from __future__ import annotations``: Dagster checks the type of ``context`` at runtime
import json
import time
from typing import Any

from dagster import Definitions, Field, OpExecutionContext, in_process_executor, job, op


@op(
    config_schema={
        "product": str,
        "run": str,
        "sleep_seconds": Field(float, default_value=0.0),
        "fail": Field(bool, default_value=False),
    }
)
def train(context: OpExecutionContext) -> dict[str, Any]:
    """Stand in for a training step: log the config it was given, then sleep or fail if asked."""
    config: dict[str, Any] = dict(context.op_config)
    context.log.info(f"retrigger config {json.dumps(config, sort_keys=True)}")
    time.sleep(config["sleep_seconds"])
    if config["fail"]:
        raise RuntimeError("failing because the run config asks for it")
    return config


# in-process: the default multiprocess executor starts one more Python per step
@job(executor_def=in_process_executor)
def retrigger_retrain() -> None:
    """The pipeline retrigger launches."""
    train()


defs = Definitions(jobs=[retrigger_retrain])
