"""`InMemoryBroker`: the broker port in one process, with RabbitMQ's delivery rules, for tests.

It keeps what the product relies on, so unit tests exercise the same paths as the real broker:
- topic routing (`*` one word, `#` zero or more); an unroutable or unknown-exchange publish
  raises `PublishError` (the real adapter publishes `mandatory`);
- at least once: a delivery nacked with requeue, or unsettled when its subscription is
  cancelled (a consumer crash), is delivered again with `delivery_count + 1`; over the queue's
  delivery limit, or nacked without requeue, it goes to the dead-letter queue with its original
  routing key, where it stays until `redrive` (`dead_letter_records`: the queue it died in and
  why, as RabbitMQ's `x-first-death-queue` / `-reason`; `redrive(queue=)`: to that queue alone);
- faults on demand: `fail_next_publishes(n)` (not confirmed: `PublishError`),
  `duplicate_next_publishes(n)` (each delivered twice, as after a relay's lost confirm).
`published` counts confirmed publications per message id; `idle()` waits until every queue is
drained and every delivery settled.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque
from dataclasses import dataclass, field, replace

from repository_after.messaging.envelope import Message
from repository_after.messaging.ports import DeadLetter, OnDelivery, PublishError, Topology


def topic_matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic matching: words split on '.', `*` is one word, `#` zero or more."""
    words, key = pattern.split("."), routing_key.split(".")

    def match(i: int, j: int) -> bool:
        if i == len(words):
            return j == len(key)
        if words[i] == "#":
            return any(match(i + 1, k) for k in range(j, len(key) + 1))
        return j < len(key) and words[i] in ("*", key[j]) and match(i + 1, j + 1)

    return match(0, 0)


@dataclass
class _Entry:
    message: Message
    delivery_count: int = 0


@dataclass
class _Queue:
    delivery_limit: int | None
    dead_letter_exchange: str | None
    entries: deque[_Entry] = field(default_factory=deque)
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class _Delivery:
    def __init__(self, broker: InMemoryBroker, queue: str, entry: _Entry) -> None:
        self.broker, self.queue, self.entry = broker, queue, entry
        self.message = entry.message
        self.delivery_count = entry.delivery_count
        self.settled = False

    async def ack(self) -> None:
        self._settle()

    async def nack(self, *, requeue: bool) -> None:
        self._settle()
        self.broker._hand_back(self.queue, self.entry, dead_letter=not requeue)

    def _settle(self) -> None:
        if self.settled:
            raise RuntimeError("delivery already settled")
        self.settled = True
        self.broker._unsettled.discard(self)
        self.broker._changed()


class _Subscription:
    def __init__(
        self, broker: InMemoryBroker, queue: str, on_delivery: OnDelivery, prefetch: int
    ) -> None:
        self.broker, self.queue, self.prefetch = broker, queue, prefetch
        self.task = asyncio.create_task(self._run(on_delivery))
        self.mine: set[_Delivery] = set()

    async def _run(self, on_delivery: OnDelivery) -> None:
        queue = self.broker.queues[self.queue]
        while True:
            while not queue.entries:
                queue.ready.clear()
                await queue.ready.wait()
            delivery = _Delivery(self.broker, self.queue, queue.entries.popleft())
            self.broker._unsettled.add(delivery)
            self.mine = {d for d in self.mine if not d.settled} | {delivery}
            await on_delivery(delivery)  # it may settle the delivery later, or never

    async def cancel(self) -> None:
        """As a consumer's channel closing: its unsettled deliveries go back, counted."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task
        for delivery in list(self.mine):
            if not delivery.settled:
                delivery.settled = True
                self.broker._unsettled.discard(delivery)
                self.broker._hand_back(self.queue, delivery.entry, dead_letter=False)
        self.broker._changed()


class InMemoryBroker:
    def __init__(self) -> None:
        self.exchanges: set[str] = set()
        self.bindings: list[tuple[str, str, str]] = []  # (exchange, pattern, queue)
        self.queues: dict[str, _Queue] = {}
        self.published: Counter[str] = Counter()
        self._dead: dict[str, deque[DeadLetter]] = {}  # dead-letter queue -> its messages
        self._unsettled: set[_Delivery] = set()
        self._fail, self._duplicate = 0, 0
        self._change = asyncio.Event()

    async def declare(self, topology: Topology) -> None:
        self.exchanges |= {topology.exchange, topology.dead_letter_exchange}
        dead = topology.dead_letter_queue
        self.queues.setdefault(dead, _Queue(None, None))
        self._dead.setdefault(dead, deque())
        self.bindings.append((topology.dead_letter_exchange, "#", dead))
        for name, patterns in topology.queues.items():
            self.queues.setdefault(
                name, _Queue(topology.delivery_limit, topology.dead_letter_exchange)
            )
            self.bindings += [(topology.exchange, p, name) for p in patterns]

    def fail_next_publishes(self, count: int) -> None:
        self._fail += count

    def duplicate_next_publishes(self, count: int) -> None:
        self._duplicate += count

    async def publish(self, exchange: str, message: Message) -> None:
        await asyncio.sleep(0)  # a confirm takes a round trip: let other tasks run meanwhile
        if self._fail:
            self._fail -= 1
            raise PublishError(f"injected: message {message.message_id} not confirmed")
        targets = self._route(exchange, message.routing_key)
        if not targets:
            raise PublishError(f"unroutable: {exchange!r} / {message.routing_key!r}")
        copies = 1
        if self._duplicate:
            self._duplicate, copies = self._duplicate - 1, 2
        for name in targets:
            for _ in range(copies):
                self._put(name, _Entry(message))
        self.published[message.message_id] += 1

    def _route(self, exchange: str, routing_key: str) -> list[str]:
        if exchange not in self.exchanges:
            return []
        return sorted(
            {q for ex, p, q in self.bindings if ex == exchange and topic_matches(p, routing_key)}
        )

    def _put(self, name: str, entry: _Entry) -> None:
        queue = self.queues[name]
        if name in self._dead:
            self._dead[name].append(DeadLetter(entry.message, queue="", reason=""))
        else:
            queue.entries.append(entry)
            queue.ready.set()
        self._changed()

    def _hand_back(self, name: str, entry: _Entry, *, dead_letter: bool) -> None:
        queue = self.queues[name]
        entry.delivery_count += 1
        over = queue.delivery_limit is not None and entry.delivery_count > queue.delivery_limit
        if dead_letter or over:
            if queue.dead_letter_exchange is None:
                return  # as RabbitMQ: dropped; every queue the product declares has a DLX
            reason = "rejected" if dead_letter else "delivery_limit"
            for target in self._route(queue.dead_letter_exchange, entry.message.routing_key):
                self._dead[target].append(DeadLetter(entry.message, queue=name, reason=reason))
        else:
            queue.entries.append(entry)
            queue.ready.set()
        self._changed()

    async def consume(self, queue: str, on_delivery: OnDelivery, *, prefetch: int) -> _Subscription:
        """Deliveries one at a time, in order: within any `prefetch` the real broker allows."""
        return _Subscription(self, queue, on_delivery, prefetch)

    async def dead_letters(self, topology: Topology) -> list[Message]:
        return [dead.message for dead in self._dead[topology.dead_letter_queue]]

    async def dead_letter_records(self, topology: Topology) -> list[DeadLetter]:
        return list(self._dead[topology.dead_letter_queue])

    async def redrive(self, topology: Topology, message_id: str, *, queue: str = "") -> bool:
        dead = self._dead[topology.dead_letter_queue]
        for found in list(dead):
            if found.message.message_id != message_id or queue not in ("", found.queue):
                continue
            if queue:  # the default exchange: to that queue alone, routed by its name
                await asyncio.sleep(0)
                self._put(queue, _Entry(replace(found.message, routing_key=queue)))
                self.published[message_id] += 1
            else:
                await self.publish(topology.exchange, found.message)  # its first routing key
            dead.remove(found)
            return True
        return False

    async def discard(self, topology: Topology, message_id: str, *, queue: str = "") -> bool:
        dead = self._dead[topology.dead_letter_queue]
        for found in dead:
            if found.message.message_id == message_id and queue in ("", found.queue):
                dead.remove(found)
                return True
        return False

    def _changed(self) -> None:
        self._change.set()

    def _busy(self) -> bool:
        live = (q for name, q in self.queues.items() if name not in self._dead)
        return bool(self._unsettled) or any(q.entries for q in live)

    async def idle(self) -> None:
        """Wait until every live queue is empty and every delivery settled."""
        while self._busy():
            self._change.clear()
            await self._change.wait()

    async def close(self) -> None:
        return None
