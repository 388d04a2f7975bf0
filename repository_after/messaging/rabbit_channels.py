"""Channels that heal: the publishing channel and each subscription's, reopened when found closed.

aio-pika's robust connection reconnects, and its robust channels restore themselves on the new
connection, usually. When the restore itself fails (the connection drops again while a channel
is being restored: its `_on_close` callback raises, see aio-pika issues 563, 577 and 668), the
channel stays closed for good: publications fail with `ChannelInvalidStateError` and a consumer
receives nothing, silently, until the process restarts. `sagabank chaos --mode choreography
--seed 3` met it after two connection cuts in a row: the log's relay could not publish for a
minute, and 566 sagas were timed out by the tracker (compensated, money conserved, but every one
of them a saga that should have completed).

So the adapter does not rely on the restore alone:
- `Publisher.channel()` checks the publishing channel before each publication and, found closed,
  closes it for good (so a late restore cannot bring back a second one) and opens a new one on
  the connection; if the connection is still down this raises, the relay records the failure and
  retries the row later (never dropped);
- `HealingSubscription` keeps what it needs to subscribe again (queue, callback, prefetch);
  `RabbitMqBroker`'s `Healer` task looks at every subscription each `heal_interval` and, where
  its channel was closed at two looks in a row while the connection is up (aio-pika's own
  restore goes first), subscribes again on a new channel. Deliveries the dead channel held
  unacked went back to the queue when it closed; the inbox absorbs any copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import aio_pika
import aio_pika.abc
import aio_pika.exceptions

logger = logging.getLogger(__name__)

#: aio-pika's own list: what a lost or refused connection or channel raises.
FAILURES = (*aio_pika.exceptions.CONNECTION_EXCEPTIONS, TimeoutError, RuntimeError)

Receive = Callable[[aio_pika.abc.AbstractIncomingMessage], Awaitable[None]]


async def _discard(channel: aio_pika.abc.AbstractChannel | None) -> None:
    """Close `channel` as its user (a robust channel closed so is never restored later)."""
    if channel is not None:
        with contextlib.suppress(*FAILURES):
            await channel.close()


class Publisher:
    """The publishing channel (confirms, returns raise) and its exchanges, reopened if closed."""

    def __init__(
        self,
        connection: aio_pika.abc.AbstractRobustConnection,
        channel: aio_pika.abc.AbstractChannel,
    ) -> None:
        self.connection = connection
        self._channel = channel
        self._exchanges: dict[str, aio_pika.abc.AbstractExchange] = {}
        self._lock = asyncio.Lock()
        self.reopened = 0

    async def channel(self) -> aio_pika.abc.AbstractChannel:
        if self._channel.is_closed:
            async with self._lock:
                if self._channel.is_closed:
                    await _discard(self._channel)
                    self._exchanges.clear()
                    self._channel = await self.connection.channel(
                        publisher_confirms=True, on_return_raises=True
                    )
                    self.reopened += 1
                    logger.warning("rabbitmq: the publishing channel was closed; reopened")
        return self._channel

    async def exchange(self, name: str) -> aio_pika.abc.AbstractExchange:
        channel = await self.channel()
        if name not in self._exchanges:
            self._exchanges[name] = await channel.get_exchange(name, ensure=True)
        return self._exchanges[name]

    def remember(self, exchange: aio_pika.abc.AbstractExchange) -> None:
        self._exchanges[exchange.name] = exchange

    def forget(self) -> None:
        self._exchanges.clear()


class HealingSubscription:
    """One queue's consumer; `heal()` subscribes again on a new channel if its channel closed.
    `heal` and `cancel` take one lock, so a subscription cancelled while it heals ends closed
    (the new channel is discarded), never consuming after its owner stopped."""

    def __init__(
        self,
        connection: aio_pika.abc.AbstractRobustConnection,
        queue: str,
        receive: Receive,
        prefetch: int,
    ) -> None:
        self.connection = connection
        self.queue = queue
        self.receive = receive
        self.prefetch = prefetch
        self.channel: aio_pika.abc.AbstractChannel | None = None
        self.cancelled = False
        self.healed = 0
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        channel = await self.connection.channel()
        try:
            await channel.set_qos(prefetch_count=self.prefetch)
            source = await channel.get_queue(self.queue, ensure=True)
            await source.consume(self.receive, no_ack=False)
        except BaseException:
            await _discard(channel)
            raise
        self.channel = channel

    @property
    def broken(self) -> bool:
        return not self.cancelled and (self.channel is None or self.channel.is_closed)

    async def heal(self) -> bool:
        """Subscribe again if the channel is closed; whether it did."""
        async with self._lock:
            if not self.broken:
                return False
            await _discard(self.channel)
            self.channel = None
            await self.open()
            self.healed += 1
        logger.warning("rabbitmq: the channel consuming %r closed; subscribed again", self.queue)
        return True

    async def cancel(self) -> None:
        async with self._lock:
            self.cancelled = True
            await _discard(self.channel)  # unacked deliveries go back to the queue


class Healer:
    """Every `interval`, while the connection is up: a subscription whose channel was found
    closed at two looks in a row subscribes again, and a closed publishing channel is reopened
    (so the next publication does not pay for it).

    While aio-pika reconnects (`connected` not set) it does nothing: aio-pika's own restore goes
    first, and closing a channel it is restoring would keep it from ever being restored. The
    second look gives that restore one more `interval` after the connection is back. Cancelled
    subscriptions are dropped from the list. Anything unexpected is logged, never ends the loop.
    """

    def __init__(
        self,
        connection: aio_pika.abc.AbstractRobustConnection,
        publisher: Publisher,
        subscriptions: list[HealingSubscription],
        interval: float,
    ) -> None:
        self.connection = connection
        self.publisher = publisher
        self.subscriptions = subscriptions
        self.interval = interval
        self.ticks = 0  # looks taken, for tests that must see the healer at work (or not)
        self._seen_broken: set[int] = set()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.look()
            except Exception:
                logger.exception("rabbitmq: the channel healer's look failed")
            self.ticks += 1

    async def look(self) -> None:
        if not self.connection.connected.is_set():
            self._seen_broken.clear()
            return  # aio-pika is reconnecting; its restore goes first
        self.subscriptions[:] = [s for s in self.subscriptions if not s.cancelled]
        broken = {id(s) for s in self.subscriptions if s.broken}
        for subscription in self.subscriptions:
            if id(subscription) in broken and id(subscription) in self._seen_broken:
                try:
                    await subscription.heal()
                except FAILURES as exc:
                    logger.warning(
                        "rabbitmq: subscribing %r again failed: %s", subscription.queue, exc
                    )
        self._seen_broken = broken
        with contextlib.suppress(*FAILURES):
            await self.publisher.channel()
