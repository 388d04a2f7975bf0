"""The broker port: what the outbox relay and the consumers need from a message broker.

Adapters: `rabbitmq.RabbitMqBroker` (aio-pika, the product's) and `memory_broker.InMemoryBroker`
(the unit tests' fake, with the same at-least-once rules). Each adapter declares `Topology`:

- one durable topic exchange the relays publish to;
- per consumer a durable queue bound to it by routing-key patterns; on RabbitMQ a QUORUM queue
  with an explicit `x-delivery-limit` and `x-dead-letter-exchange` (without a limit RabbitMQ 3.10
  requeues a poison message forever; without a DLX a rejected message is lost);
- the dead-letter exchange and one durable dead-letter queue, where a message that went over the
  limit, or was refused for good, is KEPT with its headers until `redrive` sends it back.

Rules every adapter keeps (the relay and the consumer rely on them):
- `publish` returns only once the broker has confirmed the message, persistent, carrying its
  `message_id`; anything else raises `PublishError` (unroutable included: nothing is dropped
  silently). A publish that raised may still have been delivered: a retry is a duplicate, which
  the consumer's inbox absorbs.
- delivery is at least once: a delivery not acked (nacked with requeue, or its consumer gone)
  comes again, and counts towards the delivery limit; over the limit it is dead-lettered.
  `nack(requeue=False)` dead-letters at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from repository_after.messaging.envelope import Message

#: How many times RabbitMQ may hand a message back (nack with requeue, consumer lost) before it
#: dead-letters it: 1 + this many deliveries in all.
DEFAULT_DELIVERY_LIMIT = 5


class BrokerError(Exception):
    """The broker could not do what was asked (connection lost, channel closed, refused)."""


class PublishError(BrokerError):
    """A publication was not confirmed (nacked, unroutable, connection lost): its outcome is
    unknown, so the relay keeps the row and publishes it again later."""


@dataclass(frozen=True, slots=True)
class Topology:
    exchange: str
    #: queue name -> the routing-key patterns bound to it (`*` one word, `#` zero or more)
    queues: Mapping[str, tuple[str, ...]]
    dead_letter_exchange: str
    dead_letter_queue: str
    delivery_limit: int = DEFAULT_DELIVERY_LIMIT

    def __post_init__(self) -> None:
        if self.delivery_limit < 0:
            raise ValueError("delivery_limit must be >= 0")

    @classmethod
    def named(
        cls,
        prefix: str,
        queues: Mapping[str, tuple[str, ...]],
        *,
        delivery_limit: int = DEFAULT_DELIVERY_LIMIT,
    ) -> Topology:
        """`<prefix>.events`, `<prefix>.dlx`, `<prefix>.dead` and `<prefix>.<queue>` queues."""
        return cls(
            exchange=f"{prefix}.events",
            queues={f"{prefix}.{name}": keys for name, keys in queues.items()},
            dead_letter_exchange=f"{prefix}.dlx",
            dead_letter_queue=f"{prefix}.dead",
            delivery_limit=delivery_limit,
        )


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message in the dead-letter queue and where it died: the queue (RabbitMQ's
    `x-first-death-queue`; "" if unknown) and why (`x-first-death-reason`: `delivery_limit`,
    `rejected`, ...). Two queues' copies of one message share its id; `queue` tells them apart."""

    message: Message
    queue: str
    reason: str


class Delivery(Protocol):
    """One delivery of a message to a consumer; exactly one of ack / nack settles it."""

    message: Message
    #: how many times this message was handed back before this delivery (0 on the first)
    delivery_count: int

    async def ack(self) -> None: ...

    async def nack(self, *, requeue: bool) -> None: ...


OnDelivery = Callable[[Delivery], Awaitable[None]]


class Subscription(Protocol):
    async def cancel(self) -> None:
        """Stop receiving; deliveries not yet settled go back to the queue."""
        ...


class Broker(Protocol):
    async def declare(self, topology: Topology) -> None:
        """Create the exchanges and queues (idempotent; a mismatch with existing ones raises)."""
        ...

    async def publish(self, exchange: str, message: Message) -> None:
        """Publish persistently, with `message.message_id`; return after the broker's confirm."""
        ...

    async def consume(self, queue: str, on_delivery: OnDelivery, *, prefetch: int) -> Subscription:
        """Call `on_delivery` for each delivery of `queue`, at most `prefetch` unsettled."""
        ...

    async def dead_letters(self, topology: Topology) -> list[Message]:
        """The messages now in the dead-letter queue (left there)."""
        ...

    async def dead_letter_records(self, topology: Topology) -> list[DeadLetter]:
        """`dead_letters` with the queue each died in and why (left there)."""
        ...

    async def redrive(self, topology: Topology, message_id: str, *, queue: str = "") -> bool:
        """Publish the dead-lettered message `message_id` again to the routing key it was first
        published with, then remove it from the dead-letter queue; False if it is not there.
        With `queue`: only a copy that died in `queue`, sent straight back to that queue alone
        (the default exchange: its routing key is then the queue's name), not to every queue
        its routing key reaches."""
        ...

    async def discard(self, topology: Topology, message_id: str, *, queue: str = "") -> bool:
        """Remove the dead-lettered message `message_id` (acknowledge it) without publishing it:
        the tracker's verdict on a stale letter (`choreography.dead_letters`); False if it is not
        there. With `queue`: only a copy that died in `queue`."""
        ...

    async def close(self) -> None: ...
