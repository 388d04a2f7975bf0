"""The tracker's own copies dead-lettered by crashes (the choreography chaos run's lost saga,
docs/chaos.md): the in-memory broker (RabbitMQ's delivery rules) and real SQLite files.

The tracker never hands a course back (it retries a projection in place), so its copies go over
the delivery limit only when its consumer dies while holding them: here a subscription
cancelled while the projection waits on a lease another process generation still holds, as
SIGKILLed processes did in the chaos run. Such a dead letter must not park the saga (its
services have their own copies and finished it): the scan sends it back to the tracker's queue,
and the saga log ends as the books say. And a saga parked for a dead letter whose course then
goes on (another copy applied) is projected forward, not frozen."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from repository_after.choreography import dead_letters
from repository_after.choreography.course import TRACKER, queue_of
from repository_after.domain.saga import EventKind, SagaStatus
from repository_after.entrypoints.choreography_host import Choreographed
from repository_after.messaging.memory_broker import InMemoryBroker
from repository_after.messaging.ports import Broker, DeadLetter, Delivery, Subscription
from repository_after.observability.metrics import SagaMetrics
from repository_after.service_layer.reconcile import reconcile
from repository_after.service_layer.saga_ports import Lease
from tests.choreography_support import Deployment, deployment
from tests.rabbit import fresh_vhost

pytestmark = pytest.mark.timeout(60)

TRANSFER = {"source": "acc-01", "target": "acc-02", "amount": 100}
LIMIT = 2  # the deployment's delivery limit: a copy dies on its 3rd hand-back
WAITING = 2  # the tracker's copies that must wait for the lease: the credit's call, the end


class CrashableTracker:
    """The tracker's consumer, taken over from the runtime so the test can kill it (cancel its
    subscription: its unsettled delivery goes back, counted) and start it again."""

    def __init__(self, dep: Deployment) -> None:
        self.dep = dep
        self.queue = queue_of(dep.runtime.topology, TRACKER)
        self.deliveries: list[str] = []
        self.handlers: set[asyncio.Task[None]] = set()
        self.subscription: Subscription | None = None

    async def down(self) -> None:
        runtime = self.dep.runtime
        mine = runtime._subscriptions[-1]  # `Runtime.start` subscribes the tracker last
        await mine.cancel()
        runtime._subscriptions.remove(mine)

    async def up(self) -> None:
        tracker = self.dep.orchestrator.tracker

        async def on_delivery(delivery: Delivery) -> None:
            task = asyncio.current_task()
            assert task is not None
            self.handlers.add(task)
            self.deliveries.append(delivery.message.message_id)
            try:
                await tracker.on_delivery(delivery)
            finally:
                self.handlers.discard(task)

        self.subscription = await self.dep.broker.consume(self.queue, on_delivery, prefetch=1)
        self.dep.runtime._subscriptions.append(self.subscription)

    async def crash_and_restart(self) -> None:
        """As a SIGKILL: the handler stops where it is, its channel closes, the delivery goes
        back to the queue unsettled (counted by the quorum queue); then a new consumer."""
        assert self.subscription is not None
        for task in list(self.handlers):
            task.cancel()
        await self.subscription.cancel()
        self.dep.runtime._subscriptions.remove(self.subscription)
        await self.up()


async def _finished_by_the_services(dep: Deployment) -> bool:
    """Credited, and every message published (the end is written with the credit)."""
    if await dep.balances() != {"acc-01": 900, "acc-02": 1_100}:
        return False
    backlogs = await dep.runtime.outbox_backlogs()
    return all(b.unpublished == 0 for b in backlogs.values())


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


async def _eventually(
    probe: Callable[[], Awaitable[list[DeadLetter]]], count: int
) -> list[DeadLetter]:
    """Dead-lettering is asynchronous on RabbitMQ (at-least-once): poll, 10 s at most."""
    deadline = asyncio.get_running_loop().time() + 10
    while len(found := await probe()) < count and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    return found


async def _books_ok(dep: Deployment) -> None:
    assert await dep.balances() == {"acc-01": 900, "acc-02": 1_100}
    report = await reconcile(dep.accounts, dep.orchestrator.log)
    assert report.ok, report.violations
    assert await dep.broker.dead_letters(dep.runtime.topology) == []


async def _dead_lettered_by_crashes(dep: Deployment) -> Lease:
    """A transfer the services finished while a dead process generation's lease kept the
    tracker from writing it; the tracker's consumer killed while it waited, until its copies of
    the two that add events went over the limit. Returns that lease (still held)."""
    tracker = dep.orchestrator.tracker
    consumer = CrashableTracker(dep)
    await consumer.down()
    await dep.start("transfer", TRANSFER, "t-1")
    dead_generation = await dep.orchestrator.log.acquire("t-1", "gen-1", ttl=60.0)
    assert dead_generation is not None
    await dep.until(lambda: _finished_by_the_services(dep))  # debit, credit, end: all sent
    await consumer.up()
    # The debit's call adds nothing to the log (the API wrote its intent): projected without the
    # lease, acked. The credit's call and the end add events: they wait, and die with the process.
    for crash in range(WAITING * (LIMIT + 1)):  # each handed back LIMIT + 1 times

        async def holding(n: int = crash) -> bool:
            return tracker.waiting > n  # one more delivery waiting (a killed one never leaves)

        await dep.until(holding)  # a projection waiting on the lease, unacked
        await consumer.crash_and_restart()
    topology = dep.runtime.topology
    dead = await _eventually(lambda: dep.broker.dead_letter_records(topology), WAITING)
    assert sorted((d.queue, d.reason) for d in dead) == [(consumer.queue, "delivery_limit")] * 2
    # the log as the API wrote it: the first call pending
    assert (await dep.orchestrator.get("t-1")).status == "debiting"
    return dead_generation


@pytest.mark.parametrize("kind", ["memory", "rabbitmq"])
async def test_the_trackers_copies_dead_lettered_by_crashes_are_projected_not_parked(
    tmp_path: Path, kind: str
) -> None:
    # the scan only when the test runs it (a 600 s interval: its first pass finds nothing)
    async with (
        a_broker(kind) as broker,
        deployment(tmp_path, broker, interval=600.0, delivery_limit=LIMIT) as dep,
    ):
        tracker = dep.orchestrator.tracker
        dead_generation = await _dead_lettered_by_crashes(dep)
        await dep.orchestrator.log.release([dead_generation])  # its ttl ran out

        assert await tracker.scan() == (0, 0)  # nothing parked
        assert sorted(tracker.dead_letters.redriven.values()) == [1, 1]
        metrics = SagaMetrics()
        metrics.messaging = Choreographed(dep.runtime, broker).figures
        await metrics.refresh_messaging()
        assert "sagabank_tracker_redrives_total 2.0" in metrics.render().decode()
        assert await dep.settled("t-1") == SagaStatus.COMPLETED
        kinds = [e.kind for e in (await dep.orchestrator.get("t-1")).events]
        assert EventKind.PARKED not in kinds
        assert kinds[-1] is EventKind.ATTEMPT
        await _books_ok(dep)


async def test_the_trackers_own_dead_letters_are_sent_back_a_bounded_number_of_times(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Past the bound (here 0 redrives) a copy stays in the dead-letter queue: it never circles
    # for ever, and it still parks nothing (the saga is not the tracker's to park for it).
    monkeypatch.setattr(dead_letters, "TRACKER_REDRIVES", 0)
    async with deployment(tmp_path, InMemoryBroker(), interval=600.0, delivery_limit=LIMIT) as dep:
        tracker = dep.orchestrator.tracker
        await dep.orchestrator.log.release([await _dead_lettered_by_crashes(dep)])
        assert await tracker.scan() == (0, 0)
        assert await tracker.scan() == (0, 0)
        assert len(await dep.broker.dead_letters(dep.runtime.topology)) == WAITING
        assert (await dep.orchestrator.get("t-1")).status == "debiting"


async def test_a_saga_parked_for_a_dead_letter_is_projected_forward_when_its_course_goes_on(
    tmp_path: Path,
) -> None:
    # Parked for a dead letter of its first call, while another copy of that call was applied
    # (a relay's second publication, or the tracker's own copy under the old rule): the later
    # messages carry the course on, and the tracker takes the saga out of its park to project
    # them, instead of refusing them as transitions of a parked saga.
    async with deployment(tmp_path, InMemoryBroker(), interval=600.0) as dep:
        tracker = dep.orchestrator.tracker
        consumer = CrashableTracker(dep)
        await consumer.down()
        await dep.start("transfer", TRANSFER, "t-1")
        await dep.until(lambda: _finished_by_the_services(dep))
        first = (await dep.orchestrator.get("t-1")).events
        note = f"{dead_letters.DEAD_LETTER}m-1 (call.accounts.transfer)"
        await tracker.record("t-1", EventKind.PARKED, note)
        await consumer.up()
        await dep.broker.idle()
        stored = await dep.orchestrator.get("t-1")
        assert stored.status == SagaStatus.COMPLETED
        kinds = [e.kind for e in stored.events[len(first) :]]
        assert kinds[:2] == [EventKind.PARKED, EventKind.OPERATOR_RETRY]
        resumed = stored.events[len(first) + 1]
        assert resumed.publisher == "tracker"
        assert "resumed by the tracker" in (resumed.note or "")
        await _books_ok(dep)
