"""Several outbox relays on one PostgreSQL store: a claim picks rows with `FOR UPDATE SKIP
LOCKED`, so a row another relay is claiming is skipped, not waited for and never claimed twice;
relays running side by side publish every message exactly once."""

from __future__ import annotations

import asyncio
import time

import psycopg
import pytest

from repository_after.adapters.postgres_db import postgres_conninfo
from repository_after.messaging import OutboxRelay, RelayTiming
from repository_after.messaging.memory_broker import InMemoryBroker
from repository_after.messaging.outbox import claim
from repository_after.participant_kit.postgres import PostgresTx
from tests.messaging_support import TOPOLOGY, ledger_message, open_store, seed_outbox, unpublished

pytestmark = pytest.mark.timeout(60)


async def test_a_claim_skips_the_rows_an_open_claim_holds_without_waiting(
    postgres_url: str,
) -> None:
    store = open_store("postgres", postgres_url)
    try:
        await seed_outbox(store, [ledger_message(f"c{i}", i) for i in range(10)])
        now = time.time()
        with psycopg.connect(postgres_conninfo(postgres_url)) as conn, conn.transaction():
            held = claim(PostgresTx(conn), owner="a", now=now, ttl=30, limit=4)
            # another relay claims while a's transaction is still open
            other = await asyncio.wait_for(
                store.transaction(lambda tx: claim(tx, owner="b", now=now, ttl=30, limit=4)),
                timeout=5,
            )
        assert len(held) == len(other) == 4
        assert not {c.id for c in held} & {c.id for c in other}
    finally:
        await store.close()


async def test_two_relays_side_by_side_publish_every_message_exactly_once(
    postgres_url: str,
) -> None:
    broker = InMemoryBroker()
    await broker.declare(TOPOLOGY)
    stores = [open_store("postgres", postgres_url) for _ in range(2)]
    messages = [ledger_message(f"p{i}", i) for i in range(400)]
    await seed_outbox(stores[0], messages)
    timing = RelayTiming(batch=8, poll_interval=0.01)
    relays = [OutboxRelay(s, broker, owner=f"r{i}", timing=timing) for i, s in enumerate(stores)]
    stop = asyncio.Event()
    running = [asyncio.create_task(relay.run(stop)) for relay in relays]
    try:
        while await unpublished(stores[0]):
            await asyncio.sleep(0.02)  # polling an observable outcome, bounded by the timeout
    finally:
        stop.set()
        await asyncio.gather(*running)
        for store in stores:
            await store.close()
    assert sorted(broker.published) == sorted(m.message_id for m in messages)
    assert set(broker.published.values()) == {1}
    assert all(relay.published > 0 for relay in relays)  # both took part
