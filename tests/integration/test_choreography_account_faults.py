"""The account service's configured `/credit` faults in a choreographed deployment (in-memory
broker with RabbitMQ's delivery rules, real SQLite files): a faulted credit is handed back and
comes again, is faulted once at most (so never parks its saga for the injected faults alone,
and leaves the rest of the delivery limit to real failures), and is applied once."""

from __future__ import annotations

from pathlib import Path

import pytest

from repository_after.domain.saga import SagaStatus
from repository_after.messaging.memory_broker import InMemoryBroker
from repository_after.service_layer.faults import FaultInjector, FaultMode
from repository_after.service_layer.reconcile import reconcile
from tests.choreography_support import deployment

pytestmark = pytest.mark.timeout(60)


async def test_at_rate_one_each_credit_fails_one_delivery_and_completes(tmp_path: Path) -> None:
    faults = FaultInjector(rate=1.0, mode=FaultMode.BEFORE, seed=1)
    async with deployment(
        tmp_path, InMemoryBroker(), delivery_limit=5, credit_faults=faults
    ) as dep:
        for n in range(3):
            await dep.start(
                "transfer", {"source": "acc-01", "target": "acc-02", "amount": 10}, f"t-{n}"
            )
        for n in range(3):
            assert await dep.settled(f"t-{n}") == SagaStatus.COMPLETED
        # one faulted delivery per credit, the redelivery let through
        assert faults.counts.before == 3
        assert await dep.balances() == {"acc-01": 970, "acc-02": 1_030}
        assert await dep.broker.dead_letters(dep.runtime.topology) == []
        report = await reconcile(dep.accounts, dep.orchestrator.log)
        assert report.ok, report.violations


async def test_the_default_thirty_percent_delays_credits_and_parks_none(tmp_path: Path) -> None:
    faults = FaultInjector(rate=0.3, mode=FaultMode.BEFORE, seed=5)
    balances = {"acc-01": 10_000, "acc-02": 10_000}
    async with deployment(
        tmp_path, InMemoryBroker(), delivery_limit=1, credit_faults=faults, balances=balances
    ) as dep:
        ids = [f"t-{n}" for n in range(40)]
        for n, saga in enumerate(ids):
            source, target = ("acc-01", "acc-02") if n % 2 else ("acc-02", "acc-01")
            await dep.start("transfer", {"source": source, "target": target, "amount": 7}, saga)
        statuses = [await dep.settled(saga, timeout=30) for saga in ids]
        assert statuses == [SagaStatus.COMPLETED] * 40
        assert faults.counts.before >= 4  # about 12 of 40 credits faulted once
        assert sum((await dep.balances()).values()) == 20_000
        assert await dep.broker.dead_letters(dep.runtime.topology) == []
        report = await reconcile(dep.accounts, dep.orchestrator.log)
        assert report.ok, report.violations
