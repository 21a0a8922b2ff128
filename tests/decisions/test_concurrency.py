"""Several evaluations of one product at once (as several replicas would run them) feed each
outcome to the concept-drift detector exactly once. On PostgreSQL, where row locks are real."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from retrigger.auth.scopes import SYSTEM
from retrigger.config import Settings
from retrigger.db import migrate
from retrigger.db.session import Database
from retrigger.decisions import service as decision_service
from retrigger.decisions.models import Decision, ProductState
from retrigger.decisions.schemas import Trigger
from retrigger.policies import service as policy_service
from retrigger.products.models import Product
from retrigger.signals import service as signal_service
from retrigger.signals.models import Outcome
from retrigger.signals.schemas import OutcomeBatchIn
from retrigger.teams.models import Team
from tests.fixtures.db import FreshDatabase

pytestmark = pytest.mark.asyncio(loop_scope="session")

N_OUTCOMES = 3000


async def _seed(db: Database) -> int:
    async with db.session_scope() as session:
        team = Team(name="ml", description="")
        session.add(team)
        await session.flush()
        product = Product(name="p", team_id=team.id, description="", tags=[], features=[])
        session.add(product)
        await session.flush()
        product_id = product.id
    async with db.session_scope() as session:
        spec = {"rules": [{"id": "errors", "type": "concept_drift", "detector": "adwin"}]}
        await policy_service.save_policy(
            session, principal=SYSTEM, product_name="p", spec=spec, change_reason="test"
        )
    now = datetime.now(UTC)
    for start in range(0, N_OUTCOMES, 1000):
        async with db.session_scope() as session:
            ref = await signal_service.get_product_for_ingest(session, principal=SYSTEM, name="p")
            batch = OutcomeBatchIn.model_validate(
                {
                    "outcomes": [
                        {"prediction_id": str(i), "prediction": 1, "label": i % 3 == 0}
                        for i in range(start, start + 1000)
                    ],
                    "task": "classification",
                }
            )
            await signal_service.ingest_outcomes(
                session,
                product=ref,
                batch=batch,
                key=None,
                request_hash=None,
                now=now,
                max_future=timedelta(minutes=5),
            )
    return product_id


async def _evaluate(db: Database, product_id: int) -> int:
    async with db.session_scope() as session:
        product = await session.get(Product, product_id)
        assert product is not None
        decision = await decision_service.evaluate(
            session, product=product, trigger=Trigger.api, actor="test"
        )
    return int(decision.inputs["outcomes_consumed_by_detectors"])


class TestExactlyOnce:
    @pytest.mark.parametrize("kind", ["postgresql"])
    async def test_concurrent_evaluations_consume_each_outcome_once(
        self, kind: str, tmp_path: Path
    ) -> None:
        async with FreshDatabase(kind, tmp_path) as url:
            db = Database.from_settings(Settings(database_url=url, database_pool_size=8))
            try:
                await migrate.upgrade(db.engine)
                product_id = await _seed(db)
                consumed = await asyncio.gather(*(_evaluate(db, product_id) for _ in range(4)))
                assert sum(consumed) == N_OUTCOMES
                assert sorted(consumed)[-1] == N_OUTCOMES  # the first one took them all
                async with db.session_scope() as session:
                    pending = await session.execute(
                        select(func.count(Outcome.id)).where(~Outcome.detector_processed)
                    )
                    assert pending.scalar_one() == 0
                    decisions = (await session.execute(select(func.count(Decision.id)))).scalar()
                    assert decisions == 4
                    state = await session.get(ProductState, product_id)
                    assert state is not None
                    assert state.detectors["errors"]["state"]
            finally:
                await db.dispose()
