"""A subscription cancelled while the healer renews it ends closed (`rabbit_channels`): the
channel being opened for it is discarded, never left consuming after its owner stopped.

Fakes stand in for aio-pika's connection and channels so that the cancel lands exactly while the
heal is inside `open()` (between the new channel and its `consume`): the test holds `open()` at
that point with an event, not with a sleep."""

from __future__ import annotations

import asyncio
from typing import Any

from repository_after.messaging.rabbit_channels import HealingSubscription


class FakeChannel:
    def __init__(self, gate: asyncio.Event | None) -> None:
        self.is_closed = False
        self.consuming = False
        self.gate = gate

    async def set_qos(self, **_: Any) -> None:
        if self.gate is not None:
            await self.gate.wait()  # the heal waits here until the test has cancelled

    async def get_queue(self, _queue: str, ensure: bool) -> FakeChannel:
        return self

    async def consume(self, _receive: Any, no_ack: bool) -> None:
        self.consuming = True

    async def close(self) -> None:
        self.is_closed, self.consuming = True, False


class FakeConnection:
    def __init__(self) -> None:
        self.made: list[FakeChannel] = []
        self.gate: asyncio.Event | None = None
        self.opening = asyncio.Event()

    async def channel(self) -> FakeChannel:
        made = FakeChannel(self.gate)
        self.made.append(made)
        self.opening.set()
        return made


async def test_a_subscription_cancelled_while_it_heals_ends_with_no_channel_consuming() -> None:
    connection = FakeConnection()
    subscription = HealingSubscription(connection, "q", receive=None, prefetch=1)  # type: ignore[arg-type]
    await subscription.open()
    assert subscription.channel is not None
    subscription.channel.is_closed = True  # the channel died; the healer renews it
    connection.gate, connection.opening = asyncio.Event(), asyncio.Event()
    heal = asyncio.create_task(subscription.heal())
    await connection.opening.wait()  # the heal is inside open(), its new channel made
    cancel = asyncio.create_task(subscription.cancel())
    await asyncio.sleep(0)  # let the cancel reach the lock (one loop turn, not a wait for time)
    connection.gate.set()
    await heal
    await cancel
    assert subscription.cancelled
    assert [c.consuming for c in connection.made] == [False, False]
    assert not subscription.broken
    assert await subscription.heal() is False  # never renewed once cancelled
