"""Channels aio-pika failed to restore are replaced (`messaging/rabbit_channels.py`), on real
RabbitMQ (a vhost per test).

The state a full choreography chaos run met (seed 3: two connection cuts in a row, aio-pika's
channel restore raising in its close callback) is a robust channel closed for good on a live
connection. The tests put a channel in that state directly, by closing it as its user (which
aio-pika never restores), and check what the adapter does about it: the next publication goes
out on a new channel; a subscription is renewed by the healer and receives what is published
afterwards, each message once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from repository_after.messaging import Delivery
from tests.messaging_support import LEDGER_QUEUE, TOPOLOGY, ledger_message
from tests.rabbit import fresh_vhost

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def rabbit() -> AsyncIterator[Any]:
    from repository_after.messaging.rabbitmq import RabbitMqBroker

    with fresh_vhost() as url:
        broker = await RabbitMqBroker.connect(url, heal_interval=0.1)
        await broker.declare(TOPOLOGY)
        try:
            yield broker
        finally:
            await broker.close()


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

    async def take(delivery: Delivery) -> None:
        received.append(delivery.message.message_id)
        await delivery.ack()

    await rabbit.consume(LEDGER_QUEUE, take, prefetch=4)
    deadline = time.monotonic() + 20
    while not received:
        assert time.monotonic() < deadline, "the publication never arrived"
        await asyncio.sleep(0.05)
    assert received == [ledger_message("after-close", 5).message_id]


async def test_a_subscription_whose_channel_closed_for_good_is_renewed_and_receives_again(
    rabbit: Any,
) -> None:
    received: list[str] = []

    async def take(delivery: Delivery) -> None:
        received.append(delivery.message.message_id)
        await delivery.ack()

    subscription = await rabbit.consume(LEDGER_QUEUE, take, prefetch=4)
    first = ledger_message("before", 1)
    await rabbit.publish(TOPOLOGY.exchange, first)
    deadline = time.monotonic() + 20
    while received != [first.message_id]:
        assert time.monotonic() < deadline, received
        await asyncio.sleep(0.05)

    await subscription.channel.close()  # the consumer's channel, closed for good
    later = [ledger_message(f"after-{i}", i) for i in range(5)]
    for message in later:
        await rabbit.publish(TOPOLOGY.exchange, message)
    deadline = time.monotonic() + 20
    while len(received) < 1 + len(later):
        assert time.monotonic() < deadline, f"the renewed subscription got {received}"
        await asyncio.sleep(0.05)
    assert received == [first.message_id, *(m.message_id for m in later)]
    assert subscription.healed == 1
    await subscription.cancel()
    assert not subscription.broken  # a cancelled subscription is never renewed
