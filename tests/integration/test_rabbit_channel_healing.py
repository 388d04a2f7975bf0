"""Channels aio-pika failed to restore are replaced (`messaging/rabbit_channels.py`), on real
RabbitMQ (a vhost per test).

The state a full choreography chaos run met (seed 3: two connection cuts in a row, aio-pika's
channel restore raising in its close callback) is a robust channel closed for good on a live
connection. Two tests put a channel in that state directly, by closing it as its user (which
aio-pika never restores), and check what the adapter does about it: the next publication goes
out on a new channel; a subscription is renewed by the healer and receives what is published
afterwards, each message once; cancelled, it stays closed. A third cuts the real connection
(`rabbitmqctl close_all_connections` on the test's vhost) several times: aio-pika reconnects,
its restore and the healer together leave exactly one consumer per queue, and messages flow."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

from repository_after.messaging import Delivery
from tests.messaging_support import AUDIT_QUEUE, LEDGER_QUEUE, TOPOLOGY, ledger_message
from tests.rabbit import ctl, fresh_vhost

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def vhost() -> AsyncIterator[str]:
    with fresh_vhost() as url:
        yield url


@pytest.fixture
async def rabbit(vhost: str) -> AsyncIterator[Any]:
    from repository_after.messaging.rabbitmq import RabbitMqBroker

    broker = await RabbitMqBroker.connect(vhost, heal_interval=0.1)
    await broker.declare(TOPOLOGY)
    try:
        yield broker
    finally:
        await broker.close()


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


def consumers(vhost_url: str) -> dict[str, int]:
    vhost = unquote(urlsplit(vhost_url).path.lstrip("/"))
    listed = json.loads(ctl("list_queues", "-p", vhost, "name", "consumers", "--formatter", "json"))
    return {q["name"]: int(q["consumers"]) for q in listed}


def taker(received: list[str]) -> Callable[[Delivery], Awaitable[None]]:
    async def take(delivery: Delivery) -> None:
        received.append(delivery.message.message_id)
        await delivery.ack()

    return take


async def test_a_publishing_channel_closed_for_good_is_replaced_before_the_next_publication(
    rabbit: Any,
) -> None:
    old = await rabbit.publisher.channel()
    await old.close()  # as a failed restore leaves it: closed, never to be restored
    assert old.is_closed
    await rabbit.publish(TOPOLOGY.exchange, ledger_message("after-close", 5))  # confirmed
    assert rabbit.publisher.reopened == 1
    assert not (await rabbit.publisher.channel()).is_closed
    received: list[str] = []
    await rabbit.consume(LEDGER_QUEUE, taker(received), prefetch=4)

    async def arrived() -> bool:
        return bool(received)

    await until(arrived, "the publication never arrived")
    assert received == [ledger_message("after-close", 5).message_id]


async def test_a_subscription_whose_channel_closed_for_good_is_renewed_and_receives_again(
    rabbit: Any, vhost: str
) -> None:
    received: list[str] = []
    subscription = await rabbit.consume(LEDGER_QUEUE, taker(received), prefetch=4)
    first = ledger_message("before", 1)
    await rabbit.publish(TOPOLOGY.exchange, first)

    async def got(n: int) -> bool:
        return len(received) >= n

    await until(lambda: got(1), "the first message never arrived")
    await subscription.channel.close()  # the consumer's channel, closed for good
    later = [ledger_message(f"after-{i}", i) for i in range(5)]
    for message in later:
        await rabbit.publish(TOPOLOGY.exchange, message)
    await until(lambda: got(1 + len(later)), f"the renewed subscription got {received}")
    assert received == [first.message_id, *(m.message_id for m in later)]
    assert subscription.healed == 1

    await subscription.cancel()
    ticks = rabbit.healer.ticks

    async def looked_thrice() -> bool:
        return rabbit.healer.ticks >= ticks + 3

    await until(looked_thrice, "the healer stopped looking")
    assert subscription.healed == 1  # a cancelled subscription is never renewed
    assert consumers(vhost)[LEDGER_QUEUE] == 0
    assert subscription not in rabbit.subscriptions


async def test_real_connection_cuts_leave_one_consumer_per_queue_and_messages_flow(
    rabbit: Any, vhost: str
) -> None:
    name = unquote(urlsplit(vhost).path.lstrip("/"))
    received: list[str] = []
    for queue in (LEDGER_QUEUE, AUDIT_QUEUE):
        await rabbit.consume(queue, taker(received), prefetch=4)
    sent: list[str] = []
    for cut in range(3):
        await _cut(rabbit, name)

        async def back() -> bool:
            return bool(rabbit.connection.connected.is_set()) and all(
                not s.broken for s in rabbit.subscriptions
            )

        await until(back, f"not reconnected after cut {cut}")
        message = ledger_message(f"cut-{cut}", cut)
        deadline = time.monotonic() + 30
        while True:  # the relay's way: a publication refused while reconnecting is retried
            try:
                await rabbit.publish(TOPOLOGY.exchange, message)
                break
            except Exception:
                assert time.monotonic() < deadline, "never published again"
                await asyncio.sleep(0.1)
        sent.append(message.message_id)

        async def all_arrived() -> bool:
            return set(sent) <= set(received)

        await until(all_arrived, f"after cut {cut}: sent {sent}, received {received}")
    expected = {LEDGER_QUEUE: 1, AUDIT_QUEUE: 1, TOPOLOGY.dead_letter_queue: 0}

    async def one_each() -> bool:  # the broker's own count lags a reconnect by about a second
        return consumers(vhost) == expected

    await until(one_each, f"consumers: {consumers(vhost)}")
    ticks = rabbit.healer.ticks

    async def settled() -> bool:
        return rabbit.healer.ticks >= ticks + 5

    await until(settled, "the healer stopped looking")
    assert consumers(vhost) == expected  # and no second consumer came since


async def _cut(rabbit: Any, vhost_name: str) -> None:
    """Close the broker's side of the test's connection and see the client notice (the
    broker may not list a fresh connection yet: asked again until it lands)."""
    for _ in range(20):
        ctl("close_all_connections", "-p", vhost_name, "sagabank test cut")
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            if not rabbit.connection.connected.is_set():
                return
            await asyncio.sleep(0.05)
    raise AssertionError("the connection was never cut")
