"""The relay woken by its own process's commits (`OutboxRelay.notify`), on a SQLite file and the
in-memory broker. Every relay here polls once a minute: what arrives within the tests' deadline
came from a wake-up, not from the poll (except the fallback test, which polls fast on purpose and
never wakes its relay)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from repository_after.messaging import Inbox, OutboxRelay, RelayTiming, message_id_for
from repository_after.messaging.memory_broker import InMemoryBroker
from repository_after.participant_kit.storage import ParticipantStore, Tx
from tests.messaging_support import (
    TOPOLOGY,
    apply,
    ledger_message,
    open_store,
    seed_outbox,
    unpublished,
)

pytestmark = pytest.mark.timeout(60)

#: a poll that never comes within a test's deadline
NEVER = RelayTiming(poll_interval=60.0)
DEADLINE = 10.0


class Watched:
    """The store, counting reads and write transactions; `after_read` runs after each read."""

    def __init__(self, inner: ParticipantStore) -> None:
        self.inner = inner
        self.reads = 0
        self.writes = 0
        self.after_read: Callable[[], Awaitable[None]] | None = None

    async def transaction(self, fn: Callable[[Tx], Any]) -> Any:
        self.writes += 1
        return await self.inner.transaction(fn)

    async def read(self, fn: Callable[[Tx], Any]) -> Any:
        found = await self.inner.read(fn)
        self.reads += 1
        if self.after_read is not None:
            hook, self.after_read = self.after_read, None
            await hook()
        return found


async def until(check: Callable[[], bool], timeout: float = DEADLINE) -> None:
    """Poll `check` until it holds (a condition with a deadline, not a sleep)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.005)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[ParticipantStore]:
    opened = open_store("sqlite", tmp_path / "participant.db")
    yield opened
    await opened.close()


@pytest.fixture
async def broker() -> InMemoryBroker:
    fake = InMemoryBroker()
    await fake.declare(TOPOLOGY)
    return fake


@asynccontextmanager
async def running(relay: OutboxRelay) -> AsyncIterator[None]:
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, DEADLINE)


def sent_on(saga: str) -> str:
    """The id of what `apply` sends on (`then="audit.x"`) for `ledger_message(saga, ...)`."""
    return message_id_for(saga_id=ledger_message(saga, 1).message_id, step="audit.x", role="next")


async def test_a_row_committed_through_the_inbox_is_published_without_waiting_for_the_poll(
    store: ParticipantStore, broker: InMemoryBroker
) -> None:
    watched = Watched(store)
    relay = OutboxRelay(watched, broker, owner="r1", timing=NEVER)  # type: ignore[arg-type]
    inbox = Inbox(store, consumer="ledger", handler=apply, notify=relay.notify)
    async with running(relay):
        await until(lambda: watched.reads >= 1)  # its first pass found nothing: it waits
        await inbox.handle(ledger_message("w-1", 5, then="audit.x"))
        await until(lambda: broker.published.get(sent_on("w-1")) == 1)
        await until(lambda: watched.writes == 2)  # claimed, then marked
    assert await unpublished(store) == 0


async def test_a_duplicate_does_not_wake_the_relay(
    store: ParticipantStore, broker: InMemoryBroker
) -> None:
    rung: list[int] = []
    inbox = Inbox(store, consumer="ledger", handler=apply, notify=lambda: rung.append(1))
    message = ledger_message("w-2", 5)
    assert not (await inbox.handle(message)).duplicate
    assert (await inbox.handle(message)).duplicate
    assert rung == [1]


async def test_a_wake_during_a_pass_is_not_lost(
    store: ParticipantStore, broker: InMemoryBroker
) -> None:
    # The row commits and rings AFTER the pass's read found the outbox empty, before the relay
    # goes back to waiting: the ring must start the next pass at once.
    watched = Watched(store)
    relay = OutboxRelay(watched, broker, owner="r1", timing=NEVER)  # type: ignore[arg-type]
    late = ledger_message("w-3", 5)

    async def commit_meanwhile() -> None:
        await seed_outbox(store, [late])
        relay.notify()

    watched.after_read = commit_meanwhile
    async with running(relay):
        await until(lambda: broker.published.get(late.message_id) == 1)
    assert watched.reads == 2


async def test_a_burst_of_commits_rings_once_and_is_published_in_one_batch(
    store: ParticipantStore, broker: InMemoryBroker
) -> None:
    watched = Watched(store)
    relay = OutboxRelay(watched, broker, owner="r1", timing=NEVER)  # type: ignore[arg-type]
    burst = [ledger_message(f"b-{i}", i + 1) for i in range(40)]
    async with running(relay):
        await until(lambda: watched.reads >= 1)
        await seed_outbox(store, burst)  # one group commit, then every writer rings
        for _ in burst:
            relay.notify()
        await until(lambda: all(broker.published.get(m.message_id) == 1 for m in burst))
        # one more row, one more ring: the 40 rings made ONE pass, so this is the third read
        last = ledger_message("b-last", 1)
        await seed_outbox(store, [last])
        relay.notify()
        await until(lambda: broker.published.get(last.message_id) == 1)
        await until(lambda: watched.writes == 4)  # claim + mark, twice (the seeds not counted)
        assert watched.reads == 3


async def test_the_poll_still_publishes_a_row_another_handle_wrote(
    tmp_path: Path, store: ParticipantStore, broker: InMemoryBroker
) -> None:
    # Another process (or replica) writing the same store cannot ring this relay: its poll
    # finds the row.
    relay = OutboxRelay(store, broker, owner="r1", timing=RelayTiming(poll_interval=0.05))
    other = open_store("sqlite", tmp_path / "participant.db")
    elsewhere = ledger_message("p-1", 5)
    try:
        async with running(relay):
            await seed_outbox(other, [elsewhere])
            await until(lambda: broker.published.get(elsewhere.message_id) == 1)
    finally:
        await other.close()


async def test_a_failed_publication_is_retried_when_its_backoff_is_due_not_at_the_poll(
    store: ParticipantStore, broker: InMemoryBroker
) -> None:
    relay = OutboxRelay(
        store, broker, owner="r1", timing=RelayTiming(poll_interval=60.0, initial_backoff=0.01)
    )
    broker.fail_next_publishes(3)  # backoffs 0.01, 0.02, 0.04 s
    failing = ledger_message("f-1", 5)
    async with running(relay):
        await seed_outbox(store, [failing])
        relay.notify()
        await until(lambda: broker.published.get(failing.message_id) == 1)
    assert relay.failures == 3
