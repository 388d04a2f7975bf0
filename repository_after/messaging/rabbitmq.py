"""`RabbitMqBroker`: the broker port on RabbitMQ, through aio-pika (no AMQP code of our own).

Topology (`declare`), everything durable:
- the events exchange: topic;
- each consumer's queue: QUORUM (`x-queue-type`), replicated and durable, with an explicit
  `x-delivery-limit` (RabbitMQ 3.10 otherwise requeues a poison message forever) and
  `x-dead-letter-exchange`; dead-lettering `at-least-once` (`x-dead-letter-strategy`, which
  needs `x-overflow: reject-publish`): a message is removed from the queue only once the
  dead-letter queue confirmed it, so it is never lost on the way;
- the dead-letter exchange (topic) and its queue, bound with `#`: quorum, no limit. A message
  there keeps its properties, headers and `x-death` (reason, first queue, routing keys).

Publishing: one channel with publisher confirms and `on_return_raises`; every message
persistent, `mandatory`, with its `message_id`; `publish` returns after the broker's `Basic.Ack`.
A nack, a return (unroutable), a timeout or a lost connection raise `PublishError`.

Consuming: a channel per subscription, `prefetch` unacked at most; `x-delivery-count` is the
delivery's `delivery_count`; what is not a message of ours is dead-lettered at once.

Channels heal (`rabbit_channels`): one aio-pika failed to restore after a reconnect is replaced.
Dead letters (`_find_dead`: taken unacked; closing the channel returns the others): `redrive`
publishes one again (confirmed) to its first exchange (`x-first-death-exchange`) with its
routing key, or with `queue=` to that queue alone (the default exchange), then acks it: a crash
in between leaves two copies, the inbox applies one. `discard` acks one away.
`dead_letter_records`: each one's queue and reason (`x-first-death-queue`, `-reason`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aio_pika
import aio_pika.abc
import aio_pika.exceptions

from repository_after.messaging.envelope import Message
from repository_after.messaging.ports import (
    BrokerError,
    DeadLetter,
    OnDelivery,
    PublishError,
    Topology,
)
from repository_after.messaging.rabbit_channels import (
    FAILURES,
    Healer,
    HealingSubscription,
    Publisher,
)

logger = logging.getLogger(__name__)

_FAILURES = FAILURES


def queue_arguments(topology: Topology) -> dict[str, Any]:
    return {
        "x-queue-type": "quorum",
        "x-delivery-limit": topology.delivery_limit,
        "x-dead-letter-exchange": topology.dead_letter_exchange,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }


class _RabbitDelivery:
    def __init__(self, incoming: aio_pika.abc.AbstractIncomingMessage, message: Message) -> None:
        self.incoming = incoming
        self.message = message
        count = (incoming.headers or {}).get("x-delivery-count", 0)
        self.delivery_count = count if isinstance(count, int) else 0

    async def ack(self) -> None:
        await self.incoming.ack()

    async def nack(self, *, requeue: bool) -> None:
        await self.incoming.nack(requeue=requeue)


def _message(incoming: aio_pika.abc.AbstractIncomingMessage) -> Message:
    if not incoming.message_id:
        raise ValueError("a message without a message id")
    return Message.from_wire(
        message_id=incoming.message_id,
        routing_key=incoming.routing_key or "",
        body=incoming.body,
        headers=dict(incoming.headers or {}),
    )


class RabbitMqBroker:
    """Open with `await RabbitMqBroker.connect(url)`; `url` names the vhost (a deployment's)."""

    def __init__(
        self,
        connection: aio_pika.abc.AbstractRobustConnection,
        channel: aio_pika.abc.AbstractChannel,
        *,
        publish_timeout: float,
        heal_interval: float = 1.0,
    ) -> None:
        self.connection = connection
        self.publisher = Publisher(connection, channel)
        self.publish_timeout = publish_timeout
        self.heal_interval = heal_interval
        self.subscriptions: list[HealingSubscription] = []
        self.healer: Healer | None = None
        self._healer: asyncio.Task[None] | None = None

    @classmethod
    async def connect(
        cls, url: str, *, timeout: float = 10.0, heal_interval: float = 1.0
    ) -> RabbitMqBroker:
        try:
            connection = await aio_pika.connect_robust(url, timeout=timeout)
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        except _FAILURES as exc:
            raise BrokerError(f"rabbitmq: cannot connect: {type(exc).__name__}") from exc
        return cls(connection, channel, publish_timeout=timeout, heal_interval=heal_interval)

    async def declare(self, topology: Topology) -> None:
        try:
            channel = await self.publisher.channel()
            events = await channel.declare_exchange(
                topology.exchange, aio_pika.ExchangeType.TOPIC, durable=True
            )
            dlx = await channel.declare_exchange(
                topology.dead_letter_exchange, aio_pika.ExchangeType.TOPIC, durable=True
            )
            dead = await channel.declare_queue(
                topology.dead_letter_queue, durable=True, arguments={"x-queue-type": "quorum"}
            )
            await dead.bind(dlx, "#")
            for name, patterns in topology.queues.items():
                queue = await channel.declare_queue(
                    name, durable=True, arguments=queue_arguments(topology)
                )
                for pattern in patterns:
                    await queue.bind(events, pattern)
        except _FAILURES as exc:
            raise BrokerError(f"rabbitmq: declaring the topology failed: {exc}") from exc
        self.publisher.remember(events)

    async def publish(self, exchange: str, message: Message) -> None:
        try:
            target = await self.publisher.exchange(exchange)
        except _FAILURES as exc:
            raise PublishError(f"rabbitmq: {type(exc).__name__}: {exc}") from exc
        await self._send(target, message, message.routing_key)

    async def _send(
        self, target: aio_pika.abc.AbstractExchange, message: Message, routing_key: str
    ) -> None:
        outgoing = aio_pika.Message(
            message.body(),
            message_id=message.message_id,
            headers=dict[str, aio_pika.abc.FieldValue](message.wire_headers()),
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        try:
            await target.publish(
                outgoing, routing_key, mandatory=True, timeout=self.publish_timeout
            )
        except _FAILURES as exc:
            raise PublishError(f"rabbitmq: {type(exc).__name__}: {exc}") from exc

    async def consume(
        self, queue: str, on_delivery: OnDelivery, *, prefetch: int
    ) -> HealingSubscription:
        async def receive(incoming: aio_pika.abc.AbstractIncomingMessage) -> None:
            try:
                message = _message(incoming)
            except ValueError as exc:
                logger.error("%s: not a message of ours (%s); dead-lettered", queue, exc)
                await incoming.nack(requeue=False)
                return
            await on_delivery(_RabbitDelivery(incoming, message))

        subscription = HealingSubscription(self.connection, queue, receive, prefetch)
        try:
            await subscription.open()
        except _FAILURES as exc:
            raise BrokerError(f"rabbitmq: cannot consume {queue!r}: {exc}") from exc
        self.subscriptions.append(subscription)
        if self._healer is None:
            self.healer = Healer(
                self.connection, self.publisher, self.subscriptions, self.heal_interval
            )
            self._healer = asyncio.create_task(self.healer.run())
        return subscription

    async def _side_channel(self) -> aio_pika.abc.AbstractChannel:
        """A short-lived channel; `BrokerError` while the connection is down (an outage)."""
        try:
            return await self.connection.channel()
        except _FAILURES as exc:
            raise BrokerError(f"rabbitmq: no channel: {exc!r}") from exc

    async def dead_letters(self, topology: Topology) -> list[Message]:
        return [dead.message for dead in await self.dead_letter_records(topology)]

    async def dead_letter_records(self, topology: Topology) -> list[DeadLetter]:
        found: list[DeadLetter] = []
        channel = await self._side_channel()
        try:
            dead = await channel.get_queue(topology.dead_letter_queue, ensure=True)
            while (incoming := await dead.get(no_ack=False, fail=False)) is not None:
                with contextlib.suppress(ValueError):
                    found.append(
                        DeadLetter(
                            _message(incoming),
                            queue=_death(incoming, "x-first-death-queue"),
                            reason=_death(incoming, "x-first-death-reason"),
                        )
                    )
        finally:
            await channel.close()  # nothing was acked: every message stays
        return found

    async def redrive(self, topology: Topology, message_id: str, *, queue: str = "") -> bool:
        channel = await self._side_channel()
        try:
            incoming = await _find_dead(channel, topology, message_id, queue)
            if incoming is None:
                return False
            message = _message(incoming)
            if queue:  # the default exchange routes by queue name: to that queue alone
                publishing = await self.publisher.channel()
                await self._send(publishing.default_exchange, message, queue)
            else:
                await self.publish(_first_exchange(incoming, topology.exchange), message)
            await incoming.ack()
            return True
        finally:
            with contextlib.suppress(*_FAILURES):
                await channel.close()

    async def discard(self, topology: Topology, message_id: str, *, queue: str = "") -> bool:
        channel = await self._side_channel()
        try:
            incoming = await _find_dead(channel, topology, message_id, queue)
            if incoming is None:
                return False
            await incoming.ack()
            return True
        finally:
            with contextlib.suppress(*_FAILURES):
                await channel.close()

    async def delete(self, topology: Topology) -> None:
        """Delete `topology`'s queues, exchanges and messages (a demo's per-run prefix)."""
        channel = await self._side_channel()
        try:
            for name in (*topology.queues, topology.dead_letter_queue):
                await channel.queue_delete(name)
            for name in (topology.exchange, topology.dead_letter_exchange):
                await channel.exchange_delete(name)
            self.publisher.forget()
        finally:
            with contextlib.suppress(*_FAILURES):
                await channel.close()

    async def close(self) -> None:
        if self._healer is not None:
            self._healer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._healer
            self._healer = None
        with contextlib.suppress(*_FAILURES):
            await self.connection.close()


async def _find_dead(
    channel: aio_pika.abc.AbstractChannel, topology: Topology, message_id: str, queue: str
) -> aio_pika.abc.AbstractIncomingMessage | None:
    """The dead letter `message_id` (that died in `queue`, if given), taken unacked; the others
    taken on the way stay unacked until the channel closes, which returns them."""
    dead = await channel.get_queue(topology.dead_letter_queue, ensure=True)
    while (incoming := await dead.get(no_ack=False, fail=False)) is not None:
        if incoming.message_id == message_id and (
            not queue or _death(incoming, "x-first-death-queue") == queue
        ):
            return incoming
    return None


def _death(incoming: aio_pika.abc.AbstractIncomingMessage, header: str) -> str:
    """An `x-first-death-*` header, set by RabbitMQ on a dead letter."""
    value = (incoming.headers or {}).get(header)
    return value if isinstance(value, str) else ""


def _first_exchange(incoming: aio_pika.abc.AbstractIncomingMessage, default: str) -> str:
    """The exchange a dead-lettered message was first published to."""
    value = (incoming.headers or {}).get("x-first-death-exchange")
    return value if isinstance(value, str) and value else default
