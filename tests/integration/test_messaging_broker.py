"""The broker port's contract, on RabbitMQ (a vhost of its own per test, created and deleted
here) and on the in-memory fake the unit tests use: confirmed publication with the message's id,
headers and payload; nothing unroutable is accepted silently; at-least-once redelivery counted
towards the delivery limit; over it, or refused for good, a message is kept in the dead-letter
queue and `redrive` sends it back to its routing key."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import pytest

from repository_after.messaging import Broker, Delivery, Message, PublishError, Topology
from repository_after.messaging.memory_broker import InMemoryBroker
from tests.messaging_support import AUDIT_QUEUE, LEDGER_QUEUE, TOPOLOGY, ledger_message
from tests.rabbit import fresh_vhost, queues

pytestmark = pytest.mark.timeout(60)
T = TypeVar("T")


@pytest.fixture(params=["memory", "rabbitmq"])
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    if request.param == "memory":
        fake = InMemoryBroker()
        await fake.declare(TOPOLOGY)
        yield fake
        return
    from repository_after.messaging.rabbitmq import RabbitMqBroker

    with fresh_vhost() as url:
        real = await RabbitMqBroker.connect(url)
        await real.declare(TOPOLOGY)
        try:
            yield real
        finally:
            await real.close()


async def eventually(probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool]) -> T:
    """Poll `probe` until `ok` (dead-lettering is asynchronous on RabbitMQ); 10 s at most."""
    deadline = time.monotonic() + 10
    while True:
        value = await probe()
        if ok(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.05)


class Received:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Delivery] = asyncio.Queue()

    async def __call__(self, delivery: Delivery) -> None:
        await self.queue.put(delivery)

    async def next(self) -> Delivery:
        return await asyncio.wait_for(self.queue.get(), timeout=10)


async def test_a_published_message_arrives_with_its_id_headers_and_payload(broker: Broker) -> None:
    sent = Message("m-1", "ledger.entry", {"amount": 5, "note": "é"}, headers={"saga": "s1"})
    await broker.publish(TOPOLOGY.exchange, sent)
    received = Received()
    subscription = await broker.consume(LEDGER_QUEUE, received, prefetch=4)
    delivery = await received.next()
    await delivery.ack()
    await subscription.cancel()
    assert delivery.message == sent
    assert delivery.delivery_count == 0


async def test_an_unroutable_publication_raises(broker: Broker) -> None:
    with pytest.raises(PublishError):
        await broker.publish(TOPOLOGY.exchange, Message("m-2", "nobody.listens", {"amount": 1}))


async def test_a_message_handed_back_comes_again_counted_then_is_dead_lettered_and_redriven(
    broker: Broker,
) -> None:
    message = ledger_message("poison", 3)
    await broker.publish(TOPOLOGY.exchange, message)
    received = Received()
    subscription = await broker.consume(LEDGER_QUEUE, received, prefetch=1)
    counts = []
    for _ in range(TOPOLOGY.delivery_limit + 1):
        delivery = await received.next()
        counts.append(delivery.delivery_count)
        await delivery.nack(requeue=True)
    assert counts == list(range(TOPOLOGY.delivery_limit + 1))
    dead = await eventually(lambda: broker.dead_letters(TOPOLOGY), bool)
    assert dead == [message]  # kept whole: id, routing key, headers, payload
    assert received.queue.empty()

    assert await broker.redrive(TOPOLOGY, message.message_id)
    again = await received.next()
    assert again.message == message
    assert again.delivery_count == 0  # a new life: the limit counts afresh
    await again.ack()
    await subscription.cancel()
    assert await broker.dead_letters(TOPOLOGY) == []
    assert not await broker.redrive(TOPOLOGY, message.message_id)


async def test_a_message_refused_for_good_is_dead_lettered_at_once(broker: Broker) -> None:
    message = ledger_message("refused", 1)
    await broker.publish(TOPOLOGY.exchange, message)
    received = Received()
    subscription = await broker.consume(LEDGER_QUEUE, received, prefetch=1)
    await (await received.next()).nack(requeue=False)
    assert await eventually(lambda: broker.dead_letters(TOPOLOGY), bool) == [message]
    await subscription.cancel()


async def test_deliveries_left_unsettled_by_a_lost_consumer_come_again(broker: Broker) -> None:
    message = ledger_message("lost", 2)
    await broker.publish(TOPOLOGY.exchange, message)
    first = Received()
    lost = await broker.consume(LEDGER_QUEUE, first, prefetch=1)
    assert (await first.next()).message == message
    await lost.cancel()  # never settled
    second = Received()
    subscription = await broker.consume(LEDGER_QUEUE, second, prefetch=1)
    again = await second.next()
    assert again.message == message
    assert again.delivery_count == 1
    await again.ack()
    await subscription.cancel()


async def test_redrive_leaves_the_other_dead_letters_in_place(broker: Broker) -> None:
    first, second = ledger_message("d1", 1), Message("d2", "audit.x.y", {"amount": 2})
    for message in (first, second):
        await broker.publish(TOPOLOGY.exchange, message)
    for queue in (LEDGER_QUEUE, AUDIT_QUEUE):
        received = Received()
        subscription = await broker.consume(queue, received, prefetch=1)
        await (await received.next()).nack(requeue=False)
        await subscription.cancel()
    await eventually(lambda: broker.dead_letters(TOPOLOGY), lambda d: len(d) == 2)
    assert await broker.redrive(TOPOLOGY, second.message_id)
    assert await broker.dead_letters(TOPOLOGY) == [first]
    received = Received()
    subscription = await broker.consume(AUDIT_QUEUE, received, prefetch=1)
    back = await received.next()
    await back.ack()
    await subscription.cancel()
    assert back.message == second  # to its own queue, by its first routing key


#: two queues bound to one key: each gets its own copy of a message, with the same id
BOTH = Topology.named("u", {"a": ("both.#",), "b": ("both.#",)}, delivery_limit=1)


async def test_a_dead_letter_names_its_queue_and_is_redriven_to_that_queue_alone(
    broker: Broker,
) -> None:
    await broker.declare(BOTH)
    message = Message("dup", "both.x", {"amount": 4})
    await broker.publish(BOTH.exchange, message)
    a, b = Received(), Received()
    sub_a = await broker.consume("u.a", a, prefetch=1)
    await (await a.next()).nack(requeue=False)  # refused for good in u.a
    sub_b = await broker.consume("u.b", b, prefetch=1)
    for _ in range(BOTH.delivery_limit + 1):  # handed back over the limit in u.b
        await (await b.next()).nack(requeue=True)
    dead = await eventually(lambda: broker.dead_letter_records(BOTH), lambda d: len(d) == 2)
    assert sorted((d.message.message_id, d.queue, d.reason) for d in dead) == [
        ("dup", "u.a", "rejected"),
        ("dup", "u.b", "delivery_limit"),
    ]

    assert await broker.redrive(BOTH, "dup", queue="u.b")
    back = await b.next()
    assert (back.message.message_id, back.message.payload) == ("dup", {"amount": 4})
    assert back.message.routing_key == "u.b"  # the default exchange: routed by the queue's name
    assert back.delivery_count == 0
    await back.ack()
    left = await broker.dead_letter_records(BOTH)
    assert [(d.message.message_id, d.queue) for d in left] == [("dup", "u.a")]
    await broker.publish(BOTH.exchange, Message("after", "both.y", {"amount": 1}))
    assert (await a.next()).message.message_id == "after"  # u.a got no copy of the redrive
    assert not await broker.redrive(BOTH, "dup", queue="u.b")  # u.b's copy is gone
    for sub in (sub_a, sub_b):
        await sub.cancel()


async def test_discard_removes_one_queues_dead_copy_and_publishes_nothing(broker: Broker) -> None:
    await broker.declare(BOTH)
    await broker.publish(BOTH.exchange, Message("dup", "both.x", {"amount": 4}))
    a, b = Received(), Received()
    subs = [await broker.consume("u.a", a, prefetch=1), await broker.consume("u.b", b, prefetch=1)]
    await (await a.next()).nack(requeue=False)
    await (await b.next()).nack(requeue=False)
    await eventually(lambda: broker.dead_letter_records(BOTH), lambda d: len(d) == 2)

    assert await broker.discard(BOTH, "dup", queue="u.b")
    left = await broker.dead_letter_records(BOTH)
    assert [(d.message.message_id, d.queue) for d in left] == [("dup", "u.a")]
    assert not await broker.discard(BOTH, "dup", queue="u.b")  # gone: nothing else taken
    assert not await broker.discard(BOTH, "other")
    await broker.publish(BOTH.exchange, Message("after", "both.y", {"amount": 1}))
    for received in (a, b):  # the discarded copy was not sent anywhere
        assert (await received.next()).message.message_id == "after"
    for sub in subs:
        await sub.cancel()


async def test_rabbitmq_queues_are_quorum_with_the_delivery_limit_and_the_dlx() -> None:
    from repository_after.messaging.rabbitmq import RabbitMqBroker

    with fresh_vhost() as url:
        broker = await RabbitMqBroker.connect(url)
        try:
            await broker.declare(TOPOLOGY)
            await broker.declare(TOPOLOGY)  # idempotent: the same topology again is accepted
        finally:
            await broker.close()
        declared = queues(url)
    expected = {
        "x-queue-type": "quorum",
        "x-delivery-limit": TOPOLOGY.delivery_limit,
        "x-dead-letter-exchange": TOPOLOGY.dead_letter_exchange,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    assert declared == {
        LEDGER_QUEUE: ("quorum", expected),
        AUDIT_QUEUE: ("quorum", expected),
        TOPOLOGY.dead_letter_queue: ("quorum", {"x-queue-type": "quorum"}),
    }
