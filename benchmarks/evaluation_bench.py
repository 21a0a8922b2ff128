"""End-to-end evaluation cost vs the statistics engine alone (issue: Signals in, decisions out).

A product with 50 numeric features, a reference of 1e5 rows and a current window of 1e4 rows
(ten batches of 1000) on PostgreSQL. Measured in one run, medians of several repeats:

- stats alone: ``evaluate_features(profiles, columns)`` on arrays already in memory;
- end to end: ``decisions.service.evaluate`` as ``POST :evaluate`` runs it (policy resolution,
  reading the window's 50 columns and the reference profiles from PostgreSQL, the evaluation in a
  worker thread, guards, storing the decision) in its own transaction.

Target: end to end <= 2x the stats alone. Run: ``python benchmarks/evaluation_bench.py``
(``--database-url`` to use an existing database; default a throwaway one on 127.0.0.1).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ingest_bench import create_database, drop_database  # noqa: E402

N_FEATURES = 50
N_REFERENCE = 100_000
N_CURRENT = 10_000
BATCH = 1_000


async def prepare(url: str) -> Any:
    import retrigger.db.all_models  # noqa: F401
    from retrigger.auth.scopes import SYSTEM
    from retrigger.config import Settings
    from retrigger.db import migrate
    from retrigger.db.session import Database
    from retrigger.policies import service as policy_service
    from retrigger.products.models import Product
    from retrigger.references import service as reference_service
    from retrigger.references.schemas import ReferenceCreate
    from retrigger.signals import service as signal_service
    from retrigger.signals.schemas import SampleBatchIn
    from retrigger.teams.models import Team

    db = Database.from_settings(Settings(database_url=url, background_evaluation=False))
    await migrate.upgrade(db.engine)
    rng = np.random.default_rng(0)
    names = [f"f{i:02d}" for i in range(N_FEATURES)]
    async with db.session_scope() as session:
        team = Team(name="bench", description="")
        session.add(team)
        await session.flush()
        features = [{"name": n, "kind": "numeric"} for n in names]
        session.add(Product(name="p", team_id=team.id, description="", tags=[], features=features))
    t0 = time.perf_counter()
    async with db.session_scope() as session:
        columns = {n: rng.normal(0, 1, N_REFERENCE).tolist() for n in names}
        body = ReferenceCreate(columns=columns)
        await reference_service.create(session, principal=SYSTEM, product_name="p", body=body)
    print(
        f"reference of {N_REFERENCE} rows x {N_FEATURES} features: {time.perf_counter() - t0:.1f}s"
    )
    now = datetime.now(UTC)
    async with db.session_scope() as session:
        product = await signal_service.get_product_for_ingest(session, principal=SYSTEM, name="p")
        for i in range(N_CURRENT // BATCH):
            shift = 0.3 if i % 2 else 0.0
            batch = SampleBatchIn(
                columns={n: rng.normal(shift, 1, BATCH).tolist() for n in names},
                time=now - timedelta(minutes=30 - i),
            )
            await signal_service.ingest_samples(
                session,
                product=product,
                batch=batch,
                key=None,
                request_hash=None,
                now=now,
                max_future=timedelta(minutes=5),
            )
        spec = {"rules": [{"id": "drift", "type": "data_drift", "window": "1h"}]}
        await policy_service.save_policy(
            session, principal=SYSTEM, product_name="p", spec=spec, change_reason="bench"
        )
    return db


async def measure(db: Any, repeats: int) -> tuple[list[float], list[float], dict[str, Any]]:
    from retrigger.decisions import service as decision_service
    from retrigger.decisions.schemas import Trigger
    from retrigger.products.models import Product
    from retrigger.references import service as reference_service
    from retrigger.signals import readers
    from retrigger.stats.evaluate import DriftConfig, evaluate_features

    async with db.session_scope() as session:
        product = (await session.execute(select(Product).where(Product.name == "p"))).scalar_one()
        reference = await reference_service.select(session, product_id=product.id, version=None)
        profiles = await reference_service.load_profiles(session, reference=reference)
        columns = await readers.read_columns(
            session,
            product_id=product.id,
            features=list(profiles),
            since=None,
            until=None,
            last_rows=None,
        )
    current = {name: col.values for name, col in columns.items()}
    config = DriftConfig()
    stats_times, e2e_times = [], []
    last: dict[str, Any] = {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        evaluate_features(profiles, current, config)
        stats_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        async with db.session_scope() as session:
            product = await session.get(Product, product.id)
            assert product is not None
            decision = await decision_service.evaluate(
                session, product=product, trigger=Trigger.api, actor="bench"
            )
        e2e_times.append(time.perf_counter() - t0)
        last = {
            "outcome": decision.outcome.value,
            "n_rows": decision.inputs["windows"]["drift"]["n_rows"],
        }
    return stats_times, e2e_times, last


async def measure_on(
    url: str | None, repeats: int
) -> tuple[list[float], list[float], dict[str, Any]]:
    """Stats-alone and end-to-end times on ``url`` (a throwaway database when None)."""
    name = None
    if url is None:
        name, url = await create_database()
    try:
        db = await prepare(url)
        try:
            return await measure(db, repeats)
        finally:
            await db.dispose()
    finally:
        if name is not None:
            await drop_database(name)


async def main_async(args: argparse.Namespace) -> float:
    """Print the medians; return end-to-end / stats alone."""
    stats_times, e2e_times, last = await measure_on(args.database_url, args.repeats)
    s, e = statistics.median(stats_times), statistics.median(e2e_times)
    print(f"window read: {last['n_rows']} rows x {N_FEATURES} features; outcome {last['outcome']}")
    runs_s = [round(t * 1000) for t in stats_times]
    runs_e = [round(t * 1000) for t in e2e_times]
    print(f"{'stats engine alone (median)':40} {s * 1000:9.1f} ms   {runs_s}")
    print(f"{'end-to-end evaluation (median)':40} {e * 1000:9.1f} ms   {runs_e}")
    verdict = "met" if e / s <= 2 else "MISSED"
    print(f"{'end-to-end / stats alone':40} {e / s:9.2f}x  target <= 2x: {verdict}")
    return e / s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--repeats", type=int, default=7)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
