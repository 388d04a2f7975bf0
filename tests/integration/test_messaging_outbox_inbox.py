"""The outbox/inbox contract, on a real SQLite file and on PostgreSQL, with the in-memory broker
(its delivery rules are RabbitMQ's; tests/integration/test_messaging_broker.py holds it to
them): a message applies once however often it comes, effects and sent messages commit with the
inbox row or not at all, the relay never drops a message, and a crash between commit and ack or
between publish and mark is absorbed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from repository_after.messaging import (
    Delivery,
    HorizonTooShort,
    Inbox,
    InboxConsumer,
    Message,
    OutboxRelay,
    RelayTiming,
    backlog,
    purge_inbox,
)
from repository_after.messaging.inbox import Handled
from repository_after.messaging.memory_broker import InMemoryBroker
from repository_after.messaging.outbox import Claimed
from repository_after.participant_kit.storage import ParticipantStore, Tx
from repository_after.service_layer.ports import StorageError
from tests.messaging_support import (
    AUDIT_QUEUE,
    LEDGER_QUEUE,
    TOPOLOGY,
    apply,
    effects,
    ledger_message,
    open_store,
    seed_outbox,
    unpublished,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ParticipantStore]:
    where = (
        request.getfixturevalue("postgres_url")
        if request.param == "postgres"
        else tmp_path / "participant.db"
    )
    opened = open_store(request.param, where)
    yield opened
    await opened.close()


@pytest.fixture
async def broker() -> InMemoryBroker:
    fake = InMemoryBroker()
    await fake.declare(TOPOLOGY)
    return fake


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_a_message_delivered_twice_applies_once_and_the_repeat_gets_the_recorded_result(
    store: ParticipantStore,
) -> None:
    inbox = Inbox(store, consumer="ledger", handler=apply)
    message = ledger_message("s1", 7)
    first = await inbox.handle(message)
    again = await inbox.handle(message)
    assert first == Handled({"status": "applied", "amount": 7}, duplicate=False)
    assert again == Handled({"status": "applied", "amount": 7}, duplicate=True)
    assert await effects(store) == {message.message_id: 1}
    assert await inbox.applied() == 1


async def test_concurrent_copies_of_one_message_apply_once(store: ParticipantStore) -> None:
    inbox = Inbox(store, consumer="ledger", handler=apply)
    message = ledger_message("s-race", 3)
    outcomes = await asyncio.gather(*(inbox.handle(message) for _ in range(8)))
    assert sorted(o.duplicate for o in outcomes) == [False] + [True] * 7
    assert await effects(store) == {message.message_id: 1}


async def test_inboxes_of_two_consumers_are_apart(store: ParticipantStore) -> None:
    message = ledger_message("s2", 1)
    await Inbox(store, consumer="ledger", handler=apply).handle(message)
    other = await Inbox(store, consumer="audit", handler=apply).handle(message)
    assert not other.duplicate
    assert await effects(store) == {message.message_id: 2}


async def test_a_failing_handler_commits_no_effect_no_inbox_row_and_no_outbox_row(
    store: ParticipantStore,
) -> None:
    def sends_then_fails(tx, message):  # type: ignore[no-untyped-def]
        apply(tx, message)  # an effect and an outbox row, then a failure
        raise RuntimeError("after the writes")

    inbox = Inbox(store, consumer="ledger", handler=sends_then_fails)
    with pytest.raises(RuntimeError):
        await inbox.handle(ledger_message("s3", 5, then="audit.entry"))
    assert await effects(store) == {}
    assert await inbox.applied() == 0
    assert await unpublished(store) == 0


async def test_the_messages_a_handler_sends_commit_with_its_effect_and_are_published_once(
    store: ParticipantStore, broker: InMemoryBroker
) -> None:
    inbox = Inbox(store, consumer="ledger", handler=apply)
    message = ledger_message("s4", 9, then="audit.entry")
    await inbox.handle(message)
    await inbox.handle(message)  # the duplicate sends nothing either
    assert await unpublished(store) == 1
    relay = OutboxRelay(store, broker, owner="r1")
    done = await relay.publish_due()
    assert (done.claimed, done.published, done.failed) == (1, 1, 0)
    assert (await relay.publish_due()).claimed == 0
    assert await unpublished(store) == 0
    [sent] = broker.published
    assert broker.published[sent] == 1
    assert [e.message.message_id for e in broker.queues[AUDIT_QUEUE].entries] == [sent]
    assert broker.queues[AUDIT_QUEUE].entries[0].message.payload == {"amount": 9}


async def test_one_message_id_enters_the_outbox_once(store: ParticipantStore) -> None:
    message = ledger_message("s5", 1)
    await seed_outbox(store, [message])
    with pytest.raises(StorageError):
        await seed_outbox(store, [message])
    assert await unpublished(store) == 1


async def test_a_failing_publication_is_retried_with_backoff_forever_and_stays_visible(
    store: ParticipantStore, broker: InMemoryBroker
) -> None:
    clock = Clock()
    timing = RelayTiming(initial_backoff=1.0, max_backoff=8.0)
    relay = OutboxRelay(store, broker, owner="r1", timing=timing, clock=clock)
    message = ledger_message("s6", 2)
    await seed_outbox(store, [message])
    broker.fail_next_publishes(12)  # far beyond python-cqrs's five attempts
    for attempt in range(1, 13):
        done = await relay.publish_due()
        assert (done.claimed, done.failed) == (1, 1)
        seen = await store.read(backlog)
        assert (seen.unpublished, seen.failing, seen.max_attempts) == (1, 1, attempt)
        assert seen.last_error is not None
        assert "not confirmed" in seen.last_error
        assert (await relay.publish_due()).claimed == 0  # backing off: not due yet
        clock.now += timing.backoff(attempt)
    done = await relay.publish_due()
    assert (done.published, relay.failures) == (1, 12)
    assert broker.published[message.message_id] == 1
    assert (await store.read(backlog)).unpublished == 0


async def test_an_unroutable_message_is_kept_and_retried_not_dropped(
    store: ParticipantStore, broker: InMemoryBroker
) -> None:
    lost = Message(message_id="m-nowhere", routing_key="nobody.listens", payload={"amount": 1})
    await seed_outbox(store, [lost])
    done = await OutboxRelay(store, broker, owner="r1").publish_due()
    assert done.failed == 1
    seen = await store.read(backlog)
    assert (seen.unpublished, seen.max_attempts) == (1, 1)
    assert seen.last_error is not None
    assert "unroutable" in seen.last_error


async def test_a_relay_killed_between_publish_and_mark_republishes_and_the_inbox_absorbs_it(
    store: ParticipantStore, broker: InMemoryBroker
) -> None:
    clock = Clock()
    timing = RelayTiming(claim_ttl=5.0)
    message = ledger_message("s7", 4)
    await seed_outbox(store, [message])

    async def killed(rows: list[Claimed]) -> None:
        assert [r.message.message_id for r in rows] == [message.message_id]
        raise asyncio.CancelledError  # the process ends here: confirmed, never marked

    dying = OutboxRelay(store, broker, owner="r1", timing=timing, clock=clock, after_publish=killed)
    with pytest.raises(asyncio.CancelledError):
        await dying.publish_due()
    assert await unpublished(store) == 1
    successor = OutboxRelay(store, broker, owner="r2", timing=timing, clock=clock)
    assert (await successor.publish_due()).claimed == 0  # r1's claim (and lease) still live
    clock.now += timing.claim_ttl
    assert (await successor.publish_due()).published == 1
    assert broker.published[message.message_id] == 2

    inbox = Inbox(store, consumer="ledger", handler=apply)
    outcomes: list[bool] = []

    async def record(m: Message, handled: Handled) -> None:
        outcomes.append(handled.duplicate)

    subscription = await broker.consume(
        LEDGER_QUEUE, InboxConsumer(inbox, after_commit=record), prefetch=1
    )
    await broker.idle()
    await subscription.cancel()
    assert outcomes == [False, True]
    assert await effects(store) == {message.message_id: 1}


async def test_a_consumer_killed_between_commit_and_ack_gets_the_redelivery_and_applies_once(
    store: ParticipantStore, broker: InMemoryBroker
) -> None:
    inbox = Inbox(store, consumer="ledger", handler=apply)
    message = ledger_message("s8", 6)
    await broker.publish(TOPOLOGY.exchange, message)
    committed = asyncio.Event()

    async def die(m: Message, handled: Handled) -> None:
        committed.set()
        await asyncio.Event().wait()  # stuck until the "process" is gone: never acks

    crashed = await broker.consume(LEDGER_QUEUE, InboxConsumer(inbox, after_commit=die), prefetch=1)
    await committed.wait()
    assert await effects(store) == {message.message_id: 1}
    await crashed.cancel()  # its channel closes: the unacked delivery goes back

    seen: list[tuple[int, bool]] = []

    async def record(m: Message, handled: Handled) -> None:
        seen.append((len(seen), handled.duplicate))

    restarted = await broker.consume(
        LEDGER_QUEUE, InboxConsumer(inbox, after_commit=record), prefetch=1
    )
    await broker.idle()
    await restarted.cancel()
    assert seen == [(0, True)]
    assert await effects(store) == {message.message_id: 1}


async def test_a_poison_message_is_dead_lettered_after_the_limit_and_redriven_applies_once(
    store: ParticipantStore, broker: InMemoryBroker
) -> None:
    poisoned = True

    def handler(tx, message):  # type: ignore[no-untyped-def]
        if poisoned:
            return apply(tx, Message(message.message_id, message.routing_key, {"poison": True}))
        return apply(tx, message)

    inbox = Inbox(store, consumer="ledger", handler=handler)
    message = ledger_message("s9", 8)
    await broker.publish(TOPOLOGY.exchange, message)
    consumer = InboxConsumer(inbox, requeue_delay=0)
    counts: list[int] = []

    async def counted(delivery: Delivery) -> None:
        counts.append(delivery.delivery_count)
        await consumer(delivery)

    subscription = await broker.consume(LEDGER_QUEUE, counted, prefetch=1)
    await broker.idle()
    assert counts == list(range(TOPOLOGY.delivery_limit + 1))
    assert [m.message_id for m in await broker.dead_letters(TOPOLOGY)] == [message.message_id]
    assert await effects(store) == {}

    poisoned = False  # the cause is fixed; the operator redrives
    assert await broker.redrive(TOPOLOGY, message.message_id)
    assert not await broker.redrive(TOPOLOGY, message.message_id)
    await broker.idle()
    await subscription.cancel()
    assert await broker.dead_letters(TOPOLOGY) == []
    assert await effects(store) == {message.message_id: 1}


async def test_inbox_purge_refuses_a_cutoff_closer_than_the_retry_horizon(
    store: ParticipantStore,
) -> None:
    now = datetime.now(UTC)
    with pytest.raises(HorizonTooShort):
        await purge_inbox(
            store,
            consumer="ledger",
            before=(now - timedelta(seconds=30)).isoformat(),
            now=now,
            min_horizon=60,
        )


async def test_inbox_purge_drops_old_rows_and_then_refuses_messages_that_old(
    store: ParticipantStore, broker: InMemoryBroker
) -> None:
    inbox = Inbox(store, consumer="ledger", handler=apply)
    old = ledger_message("s10", 1)
    await inbox.handle(old)
    later = datetime.now(UTC) + timedelta(days=40)  # the purge runs 40 days on
    cutoff = (later - timedelta(days=30)).isoformat(timespec="microseconds")
    purged = await purge_inbox(store, consumer="ledger", before=cutoff, now=later, min_horizon=60)
    assert purged == 1
    assert await inbox.applied() == 0
    # a late copy of the purged message must not apply a second time: it is parked instead
    await broker.publish(TOPOLOGY.exchange, old)
    subscription = await broker.consume(LEDGER_QUEUE, InboxConsumer(inbox), prefetch=1)
    await broker.idle()
    await subscription.cancel()
    assert await effects(store) == {old.message_id: 1}
    assert [m.message_id for m in await broker.dead_letters(TOPOLOGY)] == [old.message_id]
    young = Message("m-young", "ledger.entry", {"amount": 2}, created_at=later.isoformat())
    assert not (await inbox.handle(young)).duplicate


async def test_on_sqlite_one_relay_holds_the_lease_until_it_expires(tmp_path: Path) -> None:
    store = open_store("sqlite", tmp_path / "lease.db")
    broker = InMemoryBroker()
    await broker.declare(TOPOLOGY)
    clock = Clock()
    timing = RelayTiming(claim_ttl=10.0, batch=1)
    first = OutboxRelay(store, broker, owner="r1", timing=timing, clock=clock)
    second = OutboxRelay(store, broker, owner="r2", timing=timing, clock=clock)
    await seed_outbox(store, [ledger_message(f"l{i}", i) for i in range(3)])
    try:
        assert (await first.publish_due()).published == 1
        assert (await second.publish_due()).claimed == 0  # r1's lease is live
        assert (await first.publish_due()).published == 1  # renewed by its holder
        clock.now += timing.claim_ttl
        assert (await second.publish_due()).published == 1  # expired: r2 takes over
        assert (await first.publish_due()).claimed == 0  # and r1 is fenced out
        rows = await store.read(lambda tx: tx.execute("SELECT owner, token FROM outbox_relay"))
        assert rows == [("r2", 2)]
    finally:
        await store.close()
    assert sorted(broker.published.values()) == [1, 1, 1]


class CountingStore:
    """The store, counting its write transactions (reads pass through)."""

    def __init__(self, inner: ParticipantStore) -> None:
        self.inner = inner
        self.writes = 0

    async def transaction(self, fn):  # type: ignore[no-untyped-def]
        self.writes += 1
        return await self.inner.transaction(fn)

    async def read(self, fn):  # type: ignore[no-untyped-def]
        return await self.inner.read(fn)


async def test_an_idle_relay_writes_nothing_and_still_publishes_what_comes(
    store: ParticipantStore, broker: InMemoryBroker
) -> None:
    counting = CountingStore(store)
    relay = OutboxRelay(counting, broker, owner="r1")  # type: ignore[arg-type]
    for _ in range(3):
        assert (await relay.publish_due()).claimed == 0
    assert counting.writes == 0  # on SQLite each would renew the lease: an fsync per poll
    await seed_outbox(store, [ledger_message("idle-1", 1)])
    assert (await relay.publish_due()).published == 1
    assert counting.writes == 2  # the claim, then the mark
    assert await unpublished(store) == 0


async def test_once_the_broker_confirms_again_rows_backing_off_go_at_once_oldest_first(
    store: ParticipantStore, broker: InMemoryBroker
) -> None:
    # A broker outage: the older message fails 4 times and backs off for 8 s. Then the broker
    # answers and a newer message (say the tracker's time-out of the older call) comes: it must
    # not be the only one to go while the older waits out its backoff.
    clock = Clock()
    timing = RelayTiming(initial_backoff=1.0, max_backoff=8.0)
    relay = OutboxRelay(store, broker, owner="r1", timing=timing, clock=clock)
    older, newer = ledger_message("outage-1", 1), ledger_message("outage-2", 2)
    await seed_outbox(store, [older])
    broker.fail_next_publishes(4)
    for attempt in range(1, 5):
        if attempt > 1:
            clock.now += timing.backoff(attempt - 1)
        assert (await relay.publish_due()).failed == 1
    assert (await relay.publish_due()).claimed == 0  # its 4th backoff (8 s) runs
    await seed_outbox(store, [newer])
    first = await relay.publish_due()  # the clock has not moved: only the newer row is due
    assert (first.claimed, first.published) == (1, 1)
    second = await relay.publish_due()  # the older row, due at once, not 8 s later
    assert (second.claimed, second.published) == (1, 1)
    assert broker.published == {newer.message_id: 1, older.message_id: 1}
    assert (await store.read(backlog)).unpublished == 0


async def test_a_row_that_always_fails_keeps_its_backoff_while_the_others_flow(
    store: ParticipantStore, broker: InMemoryBroker
) -> None:
    # Not an outage: one row the broker always refuses (unroutable, say) among rows it takes.
    # Its failures beside confirmed rows must not count as "the broker is back", or every pass
    # would make it due again: 40 s of traffic, a pass every 0.2 s, gives it about 9 attempts
    # on its backoff (0.1 s doubling), not one every other pass (about 100).
    clock = Clock()
    timing = RelayTiming(initial_backoff=0.1, max_backoff=30.0)
    relay = OutboxRelay(store, broker, owner="r1", timing=timing, clock=clock)
    poison = Message(message_id="poison-row", routing_key="nowhere.at.all", payload={})
    await seed_outbox(store, [poison])
    for i in range(200):
        await seed_outbox(store, [ledger_message(f"flow-{i}", i)])
        await relay.publish_due()
        clock.now += 0.2
    seen = await store.read(backlog)
    assert seen.unpublished == 1  # the poison row, kept, never dropped
    assert 5 <= seen.max_attempts <= 12, seen.max_attempts
    assert sum(broker.published.values()) == 200


async def test_a_handler_sees_the_brokers_delivery_count_of_the_copy_it_handles(
    store: ParticipantStore, broker: InMemoryBroker
) -> None:
    # What a fault draw keys on (`account_faults`): the broker's count, kept across restarts.
    seen: list[int] = []

    def handler(tx: Tx, message: Message) -> dict[str, Any]:
        seen.append(message.delivery_count)
        if message.delivery_count < 2:
            raise RuntimeError("its first two deliveries fail, the third applies")
        return apply(tx, message)

    consumer = InboxConsumer(Inbox(store, consumer="ledger", handler=handler), requeue_delay=0)
    await broker.consume(LEDGER_QUEUE, consumer, prefetch=1)
    message = ledger_message("counted", 3)
    await broker.publish(TOPOLOGY.exchange, message)
    await broker.idle()
    # (SQLite's group commit runs a failed job twice: one delivery, one count, seen twice)
    assert list(dict.fromkeys(seen)) == [0, 1, 2]
    assert await effects(store) == {message.message_id: 1}
