"""The moving parts of a choreographed process: per store a relay, per service a consumer, and
the tracker (its consumer and its scan loop), started and stopped with the serving process.

`Node` is one participant: its name, its store (with the messaging tables) and its `Decide`. A
`Runtime` over some nodes and, in a process that keeps the saga log, a tracker:
- declares the topology (`course.topology`): idempotent, so every process may;
- subscribes each node's queue with an `InboxConsumer` (ack after the commit) over its
  `Inbox` and `Reactor`, and the tracker's queue with `Tracker.on_delivery`;
- runs one `OutboxRelay` per distinct store (the log's outbox shares the account store's
  database in role `all` on SQLite: one relay publishes both), and wakes it from what commits
  to that store here: each node's `Inbox` and the log's outbox call its relay's `notify` after
  a commit, so a message goes out at once; the relay's poll is left for rows written elsewhere;
- runs the tracker's scan (time-outs, dead letters) every `interval` seconds;
- with `faults` (`messaging.faults`, only `sagabank chaos` sets them) installs the seeded fault
  hooks on its consumers, handlers and relays.
`stop` cancels the subscriptions first (unsettled deliveries go back to their queues), then the
relays and the scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from repository_after.choreography.course import TRACKER, Lookup, queue_of
from repository_after.choreography.reactor import Reactor
from repository_after.choreography.stores import Decide
from repository_after.choreography.tracker import Tracker
from repository_after.messaging.faults import MessagingFaults
from repository_after.messaging.inbox import Inbox, InboxConsumer
from repository_after.messaging.outbox import Backlog, backlog
from repository_after.messaging.ports import Broker, Subscription, Topology
from repository_after.messaging.relay import OutboxRelay, RelayTiming
from repository_after.participant_kit.storage import ParticipantStore

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Node:
    name: str
    store: ParticipantStore
    decide: Decide


@dataclass
class Runtime:
    broker: Broker
    topology: Topology
    lookup: Lookup
    nodes: Sequence[Node]
    tracker: Tracker | None = None
    interval: float = 1.0
    prefetch: int = 16
    requeue_delay: float = 0.5
    relay_timing: RelayTiming | None = None
    owner: str = "sagabank"
    faults: MessagingFaults | None = None

    def __post_init__(self) -> None:
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._subscriptions: list[Subscription] = []
        self.relays: list[OutboxRelay] = []
        self.consumers: dict[str, InboxConsumer] = {}
        self._relay_by_store: dict[object, OutboxRelay] = {}

    def stores(self) -> list[ParticipantStore]:
        """Each store with an outbox, once (a store shared by two users is one outbox)."""
        return [store for _, store in self.named_stores()]

    def named_stores(self) -> list[tuple[str, ParticipantStore]]:
        """`stores()`, each named by its first user: a service, or `tracker` (the log's)."""
        found: list[tuple[str, ParticipantStore]] = []
        keys: set[object] = set()
        candidates = [(node.name, node.store) for node in self.nodes]
        if self.tracker is not None:
            candidates.append((TRACKER, self.tracker.outbox.store))
        for name, store in candidates:
            key = _same(store)
            if key not in keys:
                keys.add(key)
                found.append((name, store))
        return found

    async def outbox_backlogs(self) -> dict[str, Backlog]:
        """Each outbox's backlog (unpublished rows, failing ones), by `named_stores`' names."""
        return {name: await store.read(backlog) for name, store in self.named_stores()}

    def relay_of(self, store: ParticipantStore) -> OutboxRelay:
        """The relay publishing `store`'s outbox (after `start`)."""
        return self._relay_by_store[_same(store)]

    async def start(self) -> None:
        await self.broker.declare(self.topology)
        exchange = self.topology.exchange
        for i, store in enumerate(self.stores()):
            relay = OutboxRelay(
                store,
                self.broker,
                owner=f"{self.owner}-relay-{i}",
                timing=self.relay_timing,
                after_publish=None
                if self.faults is None
                else self.faults.after_publish(self.broker),
            )
            self.relays.append(relay)
            self._relay_by_store[_same(store)] = relay
        for node in self.nodes:
            reactor = Reactor(node.name, decide=node.decide, lookup=self.lookup, exchange=exchange)
            faults = self.faults
            handler = reactor.handle if faults is None else faults.poisoning(reactor.handle)
            inbox = Inbox(
                node.store,
                consumer=node.name,
                handler=handler,
                notify=self.relay_of(node.store).notify,
            )
            consumer = InboxConsumer(
                inbox,
                requeue_delay=self.requeue_delay,
                after_commit=None if faults is None else faults.after_commit,
            )
            self.consumers[node.name] = consumer
            self._subscriptions.append(
                await self.broker.consume(
                    queue_of(self.topology, node.name), consumer, prefetch=self.prefetch
                )
            )
        if self.tracker is not None:
            self.tracker.outbox.notify = self.relay_of(self.tracker.outbox.store).notify
            self._subscriptions.append(
                await self.broker.consume(
                    queue_of(self.topology, TRACKER), self.tracker.on_delivery, prefetch=1
                )
            )
            self._tasks.append(
                asyncio.create_task(self.tracker.run(self._stop, interval=self.interval))
            )
        for relay in self.relays:
            self._tasks.append(asyncio.create_task(relay.run(self._stop)))

    async def stop(self) -> None:
        if self.tracker is not None:
            self.tracker.stopping = True
        for subscription in self._subscriptions:
            with contextlib.suppress(Exception):
                await subscription.cancel()
        self._stop.set()
        for task in self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(task), 5.0)
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._subscriptions.clear()


def _same(store: ParticipantStore) -> object:
    """One key per database: the account store's and the log's `SharedSqliteStore`s wrap one
    `SqliteDatabase` (`db`), so they share one outbox and one relay; PostgreSQL stores name their
    database (`identity`, its connection string), which by default every component shares."""
    return getattr(store, "identity", None) or id(getattr(store, "db", store))
