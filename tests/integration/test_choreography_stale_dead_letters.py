"""Stale dead letters (`choreography.dead_letters`): a copy of a turn its saga already went past
is acknowledged away by the tracker's scan and reported (a warning naming the message and the
saga, `/metrics`' `sagabank_dead_letters_discarded_total`), while a letter of the turn a saga
still waits on parks it as before. On the in-memory broker and on RabbitMQ (a vhost of its own),
with real SQLite files.

The chaos run left 4-7 such letters after every saga was at rest (docs/chaos.md): copies of
calls whose turn a time-out had decided, and the tracker's own copies that added nothing."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from repository_after.choreography import scan
from repository_after.choreography.course import SAGA_ID, TRACKER, queue_of
from repository_after.domain.saga import EventKind, SagaStatus
from repository_after.entrypoints.choreography_host import Choreographed
from repository_after.messaging.memory_broker import InMemoryBroker
from repository_after.messaging.ports import Broker, DeadLetter, Delivery
from repository_after.observability.metrics import SagaMetrics
from repository_after.service_layer.reconcile import reconcile
from tests.choreography_support import Deployment, deployment
from tests.rabbit import fresh_vhost

pytestmark = pytest.mark.timeout(60)

TRANSFER = {"source": "acc-01", "target": "acc-02", "amount": 100}
BROKERS = pytest.mark.parametrize("kind", ["memory", "rabbitmq"])
STALE_LOGGER = "repository_after.choreography.dead_letters"


@asynccontextmanager
async def a_broker(kind: str) -> AsyncIterator[Broker]:
    if kind == "memory":
        yield InMemoryBroker()
        return
    from repository_after.messaging.rabbitmq import RabbitMqBroker

    with fresh_vhost() as url:
        real = await RabbitMqBroker.connect(url)
        try:
            yield real
        finally:
            await real.close()


def _letters(dep: Deployment) -> Callable[[], Awaitable[list[DeadLetter]]]:
    return lambda: dep.broker.dead_letter_records(dep.runtime.topology)


async def _count(dep: Deployment, n: int) -> list[DeadLetter]:
    """The dead letters once there are `n` (dead-lettering is asynchronous on RabbitMQ)."""
    found: list[DeadLetter] = []

    async def reached() -> bool:
        found[:] = await _letters(dep)()
        return len(found) == n

    await dep.until(reached)
    return found


async def _figures(dep: Deployment) -> str:
    metrics = SagaMetrics()
    metrics.messaging = Choreographed(dep.runtime, dep.broker).figures
    await metrics.refresh_messaging()
    return metrics.render().decode()


@BROKERS
async def test_a_stale_dead_letter_is_discarded_and_reported_while_a_current_one_parks(
    tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with (
        a_broker(kind) as broker,
        deployment(tmp_path, broker, interval=600.0) as dep,
    ):
        tracker = dep.orchestrator.tracker

        async def first_pass_done() -> bool:  # the loop's next pass is 10 minutes away
            return tracker.dead_letters.seen is not None

        await dep.until(first_pass_done)
        # t-1: the credit's call fails over the limit (dead-lettered from the accounts queue),
        # then its turn is decided by a time-out: settled by void_credit, the debit compensated.
        dep.blocked.add("credit")
        await dep.start("transfer", TRANSFER, "t-1")
        [stale] = await _count(dep, 1)
        assert stale.queue == queue_of(dep.runtime.topology, "accounts")
        tracker.action_timeout = 0.0
        written: list[int] = []

        async def timed_out() -> bool:
            written.append(await scan.time_out_silent(tracker))
            return sum(written) == 1

        await dep.until(timed_out)
        tracker.action_timeout = 30.0
        assert await dep.settled("t-1") == SagaStatus.COMPENSATED
        t1_events = (await dep.orchestrator.get("t-1")).events
        # t-2: the credit's call dead-lettered while the saga still waits on it
        await dep.start("transfer", TRANSFER, "t-2")
        letters = await _count(dep, 2)
        [current] = [d for d in letters if d.message.headers[SAGA_ID] == "t-2"]

        with caplog.at_level(logging.WARNING, logger=STALE_LOGGER):
            assert await tracker.scan() == (0, 1)  # t-2 parked; t-1's letter parks nothing
        assert [d.message.message_id for d in await _count(dep, 1)] == [current.message.message_id]
        reported = [r.getMessage() for r in caplog.records if "stale" in r.getMessage()]
        assert len(reported) == 1
        assert "saga t-1" in reported[0]
        assert stale.message.message_id in reported[0]
        assert tracker.dead_letters.discarded == 1
        figures = await _figures(dep)
        assert "sagabank_dead_letters_discarded_total 1.0" in figures
        assert "sagabank_dead_letters 1.0" in figures
        assert (await dep.orchestrator.get("t-1")).events == t1_events  # the log untouched
        parked = await dep.orchestrator.get("t-2")
        assert parked.status == SagaStatus.FAILED_NEEDS_ATTENTION
        assert current.message.message_id in (parked.events[-1].note or "")

        # a second pass: the current letter stays for the operator, nothing more discarded
        assert await tracker.scan() == (0, 0)
        assert len(await _letters(dep)()) == 1
        assert tracker.dead_letters.discarded == 1
        dep.blocked.discard("credit")
        state = await dep.orchestrator.retry("t-2", note="credit fixed")
        assert state.status == SagaStatus.COMPLETED
        await _count(dep, 0)
        assert await dep.balances() == {"acc-01": 900, "acc-02": 1_100}
        report = await reconcile(dep.accounts, dep.orchestrator.log)
        assert report.ok, report.violations


@BROKERS
async def test_the_trackers_own_copy_that_adds_nothing_is_discarded_the_others_sent_back(
    tmp_path: Path, kind: str
) -> None:
    # The tracker's copies of a finished transfer (the debit's call, the credit's call, the end)
    # all go over the limit in its queue (a consumer that hands every delivery back, as process
    # deaths did). The debit's call adds nothing (the API logged its intent): stale, discarded.
    # The other two add events: sent back and projected, as before.
    async with a_broker(kind) as broker, deployment(tmp_path, broker, interval=600.0) as dep:
        tracker, runtime = dep.orchestrator.tracker, dep.runtime
        own = queue_of(runtime.topology, TRACKER)
        mine = runtime._subscriptions[-1]  # `Runtime.start` subscribes the tracker last
        await mine.cancel()
        runtime._subscriptions.remove(mine)
        await dep.start("transfer", TRANSFER, "t-1")

        async def handed_back(delivery: Delivery) -> None:
            await asyncio.sleep(0)
            await delivery.nack(requeue=True)

        refusing = await broker.consume(own, handed_back, prefetch=1)
        letters = await _count(dep, 3)
        await refusing.cancel()
        assert {(d.queue, d.reason) for d in letters} == {(own, "delivery_limit")}
        runtime._subscriptions.append(await broker.consume(own, tracker.on_delivery, prefetch=1))

        assert await tracker.scan() == (0, 0)
        assert tracker.dead_letters.discarded == 1
        assert sum(tracker.dead_letters.redriven.values()) == 2
        assert tracker.dead_letters.seen == 0  # /metrics: none of the three left
        assert await dep.settled("t-1") == SagaStatus.COMPLETED
        kinds = [e.kind for e in (await dep.orchestrator.get("t-1")).events]
        assert EventKind.PARKED not in kinds
        await _count(dep, 0)
