"""What only the PostgreSQL saga log has: a connection pool per worker, opened on first use.

The contract suites (test_saga_log_contract.py, test_saga_lease_contract.py) prove the answers on
every backend; these tests prove the pool's lifecycle and that one worker's statements do not
queue behind each other on a single connection.
"""

from __future__ import annotations

import asyncio

import psycopg

from repository_after.bootstrap import build_saga_log
from repository_after.domain.saga import EventKind, SagaEvent
from repository_after.domain.transfer import TRANSFER

START = SagaEvent(EventKind.STARTED, at="2026-01-01T00:00:00+00:00")
NOTE = SagaEvent(EventKind.OPERATOR_RETRY, at="2026-01-01T00:00:01+00:00", note="x")
DEADLINE = 20.0  # bounds a wait that succeeds in milliseconds; reaching it is the failure


async def test_closing_twice_is_harmless_and_the_next_use_opens_a_new_pool(
    postgres_url: str,
) -> None:
    """The app's lifespan closes its container on every shutdown, and one app (one container)
    can be started again (a second `TestClient(app)` block): closing must be idempotent and the
    next use must open a new pool, not fail on the closed one."""
    log = build_saga_log(postgres_url)
    try:
        await log.create(
            saga_id="s1",
            definition="transfer",
            definition_version=1,
            definition_hash=TRANSFER.shape_hash(),
            params={},
            events=[START],
        )
        await log.close()
        await log.close()
        assert await log.unsettled_ids() == ["s1"]
    finally:
        await log.close()


async def _lock_waiters(url: str) -> int:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        row = await cursor.fetchone()
        assert row is not None
        return int(row[0])


async def test_a_write_blocked_on_a_row_lock_does_not_stall_the_worker_s_other_sagas(
    postgres_url: str,
) -> None:
    """One saga's write waiting on a row lock (another worker's transaction) holds one pooled
    connection; the worker's other sagas must still be read and written on other connections. A
    pool of one connection would make every saga of the worker wait for the slowest one."""
    log = build_saga_log(postgres_url)
    try:
        for saga_id in ("held", "free"):
            await log.create(
                saga_id=saga_id,
                definition="transfer",
                definition_version=1,
                definition_hash=TRANSFER.shape_hash(),
                params={},
                events=[START],
            )
        async with await psycopg.AsyncConnection.connect(postgres_url) as other:
            await other.execute("SELECT 1 FROM sagas WHERE saga_id = 'held' FOR UPDATE")
            blocked = asyncio.create_task(log.append("held", [NOTE], status="debiting"))
            async with asyncio.timeout(DEADLINE):
                while await _lock_waiters(postgres_url) == 0:  # the append holds its connection
                    await asyncio.sleep(0.01)
            async with asyncio.timeout(DEADLINE):
                await log.append("free", [NOTE], status="debiting")
                summary = await log.summary("free")
            assert summary is not None
            assert summary.status == "debiting"
            assert not blocked.done()
            await other.rollback()
        await blocked
        held = await log.summary("held")
        assert held is not None
        assert held.status == "debiting"
    finally:
        await log.close()
