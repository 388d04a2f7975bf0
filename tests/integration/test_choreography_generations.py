"""A restarted server's tracker takes back the saga leases its worker's dead process generation
held, at once instead of after their ttl (`choreography.generations`); an operator's command's
lease (same worker id) and a later generation's are left alone. The in-memory broker and real
SQLite files; the restart is the runtime built again for the same log (`wiring.runtime_for`, as
`serve` builds it), with the deployment's tracker standing for the new process's."""

from __future__ import annotations

from pathlib import Path

import pytest

from repository_after.bootstrap import saga_types
from repository_after.choreography import generations
from repository_after.choreography.course import TRACKER, queue_of
from repository_after.choreography.wiring import runtime_for
from repository_after.config import SagaMode, Settings
from repository_after.domain.saga import SagaStatus
from repository_after.messaging.memory_broker import InMemoryBroker
from tests.choreography_support import Deployment, deployment

pytestmark = pytest.mark.timeout(60)

TRANSFER = {"source": "acc-01", "target": "acc-02", "amount": 100}
DEAD_TTL = 60.0  # far beyond the test's waits: only a take-over frees these leases in time


async def _finished_by_the_services(dep: Deployment) -> bool:
    if await dep.balances() != {"acc-01": 700, "acc-02": 1_300}:
        return False
    return all(b.unpublished == 0 for b in (await dep.runtime.outbox_backlogs()).values())


async def test_a_restarted_server_takes_back_its_dead_generations_leases_not_an_operators(
    tmp_path: Path,
) -> None:
    async with deployment(tmp_path, InMemoryBroker(), interval=600.0) as dep:
        tracker, runtime, log = dep.orchestrator.tracker, dep.runtime, dep.orchestrator.log
        first = tracker.owner
        assert first.startswith("tracker-test@serve-")
        mine = runtime._subscriptions[-1]  # `Runtime.start` subscribes the tracker last
        await mine.cancel()
        runtime._subscriptions.remove(mine)
        for saga_id in ("t-1", "t-2", "t-3"):
            await dep.start("transfer", TRANSFER, saga_id)
        await dep.until(lambda: _finished_by_the_services(dep))
        # the process dies holding t-1's lease; an operator's `sagas retry` (same worker id)
        # holds t-2's; a later generation (a clash) holds t-3's
        assert await log.acquire("t-1", first, ttl=DEAD_TTL) is not None
        operator = await log.acquire("t-2", generations.operator_owner("test"), ttl=DEAD_TTL)
        later = generations.serve_owner("test", generation=10**19)
        clash = await log.acquire("t-3", later, ttl=DEAD_TTL)
        assert operator is not None
        assert clash is not None

        settings = Settings(
            database_url=f"sqlite:///{tmp_path / 'accounts.db'}",
            broker_prefix="t",
            broker_delivery_limit=2,
            mode=SagaMode.CHOREOGRAPHY,
            worker_id="test",
            _env_file=None,
        )
        await runtime_for(
            settings,
            broker=dep.broker,
            types=saga_types(),
            account_store=None,
            kit_services=[],
            orchestrator=dep.orchestrator,
        )  # the restarted process's runtime: a new generation
        assert first < tracker.owner < later
        for saga_id in ("t-2", "t-3"):  # still held
            assert await log.acquire(saga_id, "probe", ttl=1.0) is None
        await log.release([operator, clash])  # the operator's retry and the clash end
        queue = queue_of(runtime.topology, TRACKER)
        subscription = await dep.broker.consume(queue, tracker.on_delivery, prefetch=4)
        runtime._subscriptions.append(subscription)
        for saga_id in ("t-1", "t-2", "t-3"):  # t-1 well inside the dead generation's ttl
            assert await dep.settled(saga_id) == SagaStatus.COMPLETED
