"""Transfers and orders choreographed over real RabbitMQ (a vhost of the test's own) and real
SQLite files, composed as `sagabank serve --mode choreography` composes them: every saga comes to
rest through the broker alone, money and stock are conserved, the audit reconciles the books
with the tracker's log, nothing is left in the dead-letter queue; and a dead-lettered call parks
its saga until `retry` redrives it from RabbitMQ's dead-letter queue."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from repository_after.domain.saga import EventKind, SagaStatus
from repository_after.service_layer.reconcile import reconcile
from tests.choreography_support import deployment
from tests.rabbit import fresh_vhost, queues

pytestmark = pytest.mark.timeout(90)

BALANCES = {f"acc-{i:02d}": 10_000 for i in range(1, 7)}


def _order(i: int) -> dict[str, Any]:
    return {
        "order_id": f"o-{i}",
        "customer": f"acc-0{1 + i % 3}",
        "merchant": f"acc-0{4 + i % 3}",
        "lines": [{"sku": "apple", "qty": 1 + i % 3}, {"sku": "pear", "qty": 1}],
        "total": 700 + 100 * i,
    }


async def test_transfers_and_orders_run_choreographed_over_rabbitmq(tmp_path: Path) -> None:
    from repository_after.messaging.rabbitmq import RabbitMqBroker

    with fresh_vhost() as url:
        broker = await RabbitMqBroker.connect(url)
        try:
            async with deployment(
                tmp_path, broker, balances=BALANCES, stock={"apple": 12, "pear": 6}
            ) as dep:
                starts = [
                    dep.start(
                        "transfer",
                        {
                            "source": f"acc-0{1 + i % 6}",
                            "target": f"acc-0{1 + (i + 1) % 6}",
                            "amount": 1_500 * (1 + i % 5),
                        },
                        f"t-{i}",
                    )
                    for i in range(20)
                ] + [dep.start("order", _order(i), f"o-{i}") for i in range(10)]
                await asyncio.gather(*starts)
                ids = [f"t-{i}" for i in range(20)] + [f"o-{i}" for i in range(10)]
                ends = [await dep.settled(saga_id, timeout=30) for saga_id in ids]
                assert set(ends) <= {
                    SagaStatus.COMPLETED,
                    SagaStatus.REJECTED,
                    SagaStatus.COMPENSATED,
                }
                assert SagaStatus.COMPLETED in ends
                assert {SagaStatus.REJECTED, SagaStatus.COMPENSATED} & set(ends)
                assert sum((await dep.balances()).values()) == sum(BALANCES.values())
                for sku, row in (await dep.stock()).items():
                    assert row["reserved"] == 0, sku
                    assert row["available"] + row["sold"] == row["opened"], sku
                report = await reconcile(dep.accounts, dep.orchestrator.log)
                assert report.ok, report.violations
                assert await broker.dead_letters(dep.runtime.topology) == []
            reported = queues(url)
            assert reported["t.tracker"][0] == "quorum"
            assert reported["t.accounts"][1]["x-delivery-limit"] == 2
        finally:
            await broker.close()


async def test_a_dead_lettered_call_parks_its_saga_and_retry_redrives_it(tmp_path: Path) -> None:
    from repository_after.messaging.rabbitmq import RabbitMqBroker

    with fresh_vhost() as url:
        broker = await RabbitMqBroker.connect(url)
        try:
            async with deployment(tmp_path, broker, delivery_limit=1) as dep:
                dep.blocked.add("credit")
                await dep.start(
                    "transfer", {"source": "acc-01", "target": "acc-02", "amount": 100}, "t-1"
                )
                assert await dep.settled("t-1", timeout=30) == SagaStatus.FAILED_NEEDS_ATTENTION
                assert dep.failed["credit"] >= 2  # two deliveries (the engine may re-run one)
                parked = (await dep.orchestrator.get("t-1")).events[-1]
                assert parked.kind is EventKind.PARKED
                dep.blocked.discard("credit")
                state = await dep.orchestrator.retry("t-1", note="fixed")
                assert state.status == SagaStatus.COMPLETED
                assert await dep.balances() == {"acc-01": 900, "acc-02": 1_100}
                assert await broker.dead_letters(dep.runtime.topology) == []
        finally:
            await broker.close()
