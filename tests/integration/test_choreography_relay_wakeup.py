"""The runtime wakes each store's relay from what commits to it in-process (`Runtime.start`): the
saga log's outbox (the start, the tracker's time-outs) and every service's inbox. Composed as in
tests/integration/test_choreography_in_process.py, but the relays poll once a minute: a saga
that settles within the deadline was carried by wake-ups alone, every hop of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from repository_after.domain.saga import SagaStatus
from repository_after.messaging.memory_broker import InMemoryBroker
from repository_after.messaging.relay import RelayTiming
from tests.choreography_support import deployment

pytestmark = pytest.mark.timeout(60)

#: no poll within a test (the backoff stays short: it is not what is tested here)
SLEEPY = RelayTiming(poll_interval=60.0, initial_backoff=0.01, max_backoff=0.1)
TRANSFER = {"source": "acc-01", "target": "acc-02", "amount": 100}
ORDER = {
    "order_id": "o-1",
    "customer": "acc-01",
    "merchant": "acc-02",
    "lines": [{"sku": "apple", "qty": 2}],
    "total": 50,
}


async def test_a_transfer_and_an_order_complete_on_wake_ups_alone(tmp_path: Path) -> None:
    async with deployment(
        tmp_path, InMemoryBroker(), stock={"apple": 5}, relay_timing=SLEEPY
    ) as dep:
        runtime = dep.runtime
        accounts = next(node.store for node in runtime.nodes if node.name == "accounts")
        # role all on SQLite: the log's outbox is the account database's, one relay for both
        assert runtime.relay_of(dep.orchestrator.tracker.outbox.store) is runtime.relay_of(accounts)
        assert len(runtime.relays) == 3
        # a first saga, so every relay has made its first pass (which would find the rows
        # written before it, woken or not) and waits on its minute-long poll
        await dep.start("transfer", TRANSFER, "t-0")
        assert await dep.settled("t-0") == SagaStatus.COMPLETED
        # then one saga at a time: nothing else in flight rings a relay for it
        await dep.start("transfer", TRANSFER, "t-1")
        assert await dep.settled("t-1") == SagaStatus.COMPLETED
        await dep.start("order", ORDER, "o-1")
        assert await dep.settled("o-1") == SagaStatus.COMPLETED
        assert await dep.balances() == {"acc-01": 750, "acc-02": 1_250}


async def test_the_trackers_time_out_is_published_on_a_wake_up(tmp_path: Path) -> None:
    # The time-out is written by the tracker's scan into the log's outbox (`enqueue_once`),
    # the compensations by the services' inboxes: all of them must ring.
    async with deployment(
        tmp_path,
        InMemoryBroker(),
        stock={"apple": 5},
        action_timeout=0.3,
        delivery_limit=1_000,
        relay_timing=SLEEPY,
    ) as dep:
        dep.blocked.add("reserve")  # the inventory "hangs" on this reservation
        await dep.start("order", ORDER, "o-1")
        assert await dep.settled("o-1") == SagaStatus.COMPENSATED
        dep.blocked.discard("reserve")
