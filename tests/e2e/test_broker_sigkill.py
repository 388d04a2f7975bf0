"""A message the broker confirmed survives the broker's SIGKILL: the relay marks a row published
only after the confirm, the message is persistent in a durable quorum queue, so once a node of
the test's own (tests/rabbit.py `private_node`; the shared broker is never touched) is killed and
started again on its data, every published message is still there and applies once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from repository_after.messaging import Inbox, InboxConsumer, OutboxRelay
from repository_after.messaging.inbox import Handled
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
from tests.rabbit import private_node

pytestmark = [pytest.mark.e2e, pytest.mark.chaos, pytest.mark.timeout(180)]

COUNT = 40


def test_confirmed_messages_survive_a_sigkill_of_the_broker_and_apply_once(tmp_path: Path) -> None:
    from repository_after.messaging.rabbitmq import RabbitMqBroker

    messages = [ledger_message(f"b{i}", i) for i in range(COUNT)]
    store_path = tmp_path / "ledger.db"

    async def publish(url: str) -> int:
        store = open_store("sqlite", store_path)
        broker = await RabbitMqBroker.connect(url)
        try:
            await broker.declare(TOPOLOGY)
            await seed_outbox(store, messages)
            published = (await OutboxRelay(store, broker, owner="r1").publish_due()).published
            assert await unpublished(store) == 0  # marked: every one was confirmed
            return published
        finally:
            await broker.close()
            await store.close()

    async def consume(url: str) -> list[bool]:
        store = open_store("sqlite", store_path)
        broker = await RabbitMqBroker.connect(url)
        seen: list[bool] = []
        done = asyncio.Event()

        async def record(message: object, handled: Handled) -> None:
            seen.append(handled.duplicate)
            if len(seen) == COUNT:
                done.set()

        consumer = InboxConsumer(
            Inbox(store, consumer="ledger", handler=apply), after_commit=record
        )
        try:
            subscription = await broker.consume(LEDGER_QUEUE, consumer, prefetch=16)
            await asyncio.wait_for(done.wait(), timeout=60)
            await subscription.cancel()
            assert await effects(store) == {m.message_id: 1 for m in messages}
        finally:
            await broker.close()
            await store.close()
        return seen

    with private_node() as node:
        assert asyncio.run(publish(node.url)) == COUNT
        node.kill()
        node.start()
        assert asyncio.run(consume(node.url)) == [False] * COUNT
