"""The messaging foundation whole, in one process, on real RabbitMQ (a vhost per test) and a real
SQLite file: outbox -> relay (confirms) -> quorum queue -> inbox consumer (ack after commit);
a poison message parked in the dead-letter queue after the delivery limit and brought back by
`redrive`; copies of one message id applied once."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from repository_after.messaging import (
    Delivery,
    Inbox,
    InboxConsumer,
    Message,
    OutboxRelay,
    Topology,
)
from repository_after.messaging.inbox import Handled
from repository_after.participant_kit.storage import ParticipantStore, Tx
from tests.messaging_support import (
    LEDGER_QUEUE,
    TOPOLOGY,
    apply,
    effects,
    ledger_message,
    open_store,
    seed_outbox,
    unpublished,
)
from tests.rabbit import fresh_vhost

pytestmark = pytest.mark.timeout(60)
T = TypeVar("T")


@pytest.fixture
async def rabbit() -> AsyncIterator[Any]:
    from repository_after.messaging.rabbitmq import RabbitMqBroker

    with fresh_vhost() as url:
        broker = await RabbitMqBroker.connect(url)
        await broker.declare(TOPOLOGY)
        try:
            yield broker
        finally:
            await broker.close()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ParticipantStore]:
    opened = open_store("sqlite", tmp_path / "ledger.db")
    yield opened
    await opened.close()


async def until(probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool]) -> T:
    deadline = time.monotonic() + 20
    while not ok(value := await probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r} after 20 s")
        await asyncio.sleep(0.05)
    return value


async def test_a_poison_message_is_parked_after_the_delivery_limit_and_redrive_applies_it_once(
    rabbit: Any, store: ParticipantStore
) -> None:
    broken = True

    def handler(tx: Tx, message: Message) -> dict[str, Any]:
        if broken:
            raise RuntimeError("a bug, until the operator deploys the fix")
        return apply(tx, message)

    consumer = InboxConsumer(Inbox(store, consumer="ledger", handler=handler), requeue_delay=0.1)
    counts: list[int] = []
    times: list[float] = []

    async def counted(delivery: Delivery) -> None:
        counts.append(delivery.delivery_count)
        times.append(time.monotonic())
        await consumer(delivery)

    message = ledger_message("poison", 21)
    subscription = await rabbit.consume(LEDGER_QUEUE, counted, prefetch=1)
    await rabbit.publish(TOPOLOGY.exchange, message)
    dead = await until(lambda: rabbit.dead_letters(TOPOLOGY), bool)
    assert dead == [message]
    assert counts == list(range(TOPOLOGY.delivery_limit + 1))  # then parked, not requeued
    # each failed delivery was handed back only after its (doubling) delay
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(gap >= consumer.delay(n) for n, gap in enumerate(gaps))
    assert await effects(store) == {}

    broken = False
    assert await rabbit.redrive(TOPOLOGY, message.message_id)
    await until(lambda: effects(store), lambda seen: seen == {message.message_id: 1})
    await subscription.cancel()
    assert await rabbit.dead_letters(TOPOLOGY) == []


async def test_through_the_relay_every_message_applies_once_however_often_it_is_published(
    rabbit: Any, store: ParticipantStore
) -> None:
    messages = [ledger_message(f"flow{i}", i, then="audit.entry") for i in range(20)]
    await seed_outbox(store, messages)
    relay = OutboxRelay(store, rabbit, owner="r1")
    assert (await relay.publish_due()).published == 20
    # as after a relay's crash before its mark: the first half is published a second time
    await store.transaction(
        lambda tx: tx.execute("UPDATE outbox SET published_at = NULL WHERE id <= 10")
    )
    assert (await relay.publish_due()).published == 10
    seen: list[bool] = []

    async def record(message: Message, handled: Handled) -> None:
        seen.append(handled.duplicate)

    consumer = InboxConsumer(Inbox(store, consumer="ledger", handler=apply), after_commit=record)
    subscription = await rabbit.consume(LEDGER_QUEUE, consumer, prefetch=8)
    await until(lambda: asyncio.sleep(0, len(seen)), lambda n: n == 30)
    await subscription.cancel()
    assert sorted(seen) == [False] * 20 + [True] * 10
    assert await effects(store) == {m.message_id: 1 for m in messages}
    # each applied message sent its follow-up through the outbox, in the same transaction
    assert await unpublished(store) == 20
    assert (await relay.publish_due()).published == 20


def test_a_topology_has_a_delivery_limit_and_names_its_dead_letter_queue() -> None:
    topology = Topology.named("sagabank", {"inventory": ("order.*",)}, delivery_limit=3)
    assert topology.queues == {"sagabank.inventory": ("order.*",)}
    assert topology.dead_letter_queue == "sagabank.dead"
    assert topology.delivery_limit == 3
    with pytest.raises(ValueError, match="delivery_limit"):
        Topology.named("x", {}, delivery_limit=-1)


async def test_a_published_message_is_persistent_and_carries_its_id_on_the_broker(
    rabbit: Any,
) -> None:
    import aio_pika

    message = ledger_message("props", 1)
    await rabbit.publish(TOPOLOGY.exchange, message)
    channel = await rabbit.connection.channel()
    try:
        stored = await (await channel.get_queue(LEDGER_QUEUE)).get(no_ack=True, fail=False)
    finally:
        await channel.close()
    assert stored is not None
    assert stored.delivery_mode == aio_pika.DeliveryMode.PERSISTENT  # written to disk
    assert stored.message_id == message.message_id
    assert stored.content_type == "application/json"
    assert stored.body == message.body()
