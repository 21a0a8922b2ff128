"""The flow the integration tests launch, served as deployment ``retrain/retrigger``.

Run with ``PREFECT_API_URL`` set; it serves until stopped. ``sleep_seconds`` and ``fail`` let
tests watch a run that lasts or one that fails.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import flow


@flow(name="retrain")
def retrain(
    product: str,
    run: str = "",
    retrigger: dict[str, Any] | None = None,
    sleep_seconds: float = 0.0,
    fail: bool = False,
) -> dict[str, Any]:
    """Stand in for a retraining pipeline: return what the run was given."""
    time.sleep(sleep_seconds)
    if fail:
        raise RuntimeError("failing because the run's parameters ask for it")
    return {"product": product, "run": run, "retrigger": retrigger}


if __name__ == "__main__":
    retrain.serve(name="retrigger")
