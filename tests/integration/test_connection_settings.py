"""The durability settings the stores rely on, read back from the connections the product opens.

SQLite: a committed transaction is on disk before its caller hears "done" only with
`journal_mode=WAL` and `synchronous=FULL` (in WAL mode `NORMAL` may lose the last commits on
power loss, `OFF` on an OS crash), and both are per connection or per file, set by
`SqliteDatabase._connect`. `foreign_keys=ON` makes the ledger's and the events' REFERENCES bite.
`busy_timeout` is 0 on the event loop's thread (a locked file fails at once there, the batch moves
to the writer thread) and `_BUSY_TIMEOUT_MS` on the writer thread: the loop never blocks on
another process's lock. Each is read with PRAGMA through the store's own `SqliteDatabase`, for
the account store, the saga log, and the two sharing one connection as `bootstrap` builds them.

PostgreSQL: every pooled connection carries `idle_in_transaction_session_timeout` (a paused
worker's locks are released), commits are synchronous (`synchronous_commit=on`: an acknowledged
operation survives a server crash; the product must never turn it off for speed), and the
account store's reads run in one REPEATABLE READ, READ ONLY snapshot. Read with SHOW on several
connections of each pool held at once, so a setting made on one connection only would show.

MariaDB: every connection of the account store's threads carries READ COMMITTED, UTC, strict
SQL mode, a bounded lock wait and `idle_transaction_timeout` (a paused process's locks are
released); reads run in a REPEATABLE READ, read-only snapshot. (Durable commits are the server's
`innodb_flush_log_at_trx_commit`, a global setting the stores check at connect; not changed here,
on a server other tests share.)
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import psycopg

from repository_after.adapters.sqlite_accounts import SqliteAccountStore
from repository_after.adapters.sqlite_db import _BUSY_TIMEOUT_MS, SqliteDatabase
from repository_after.adapters.sqlite_saga_log import SqliteSagaLog
from repository_after.bootstrap import build_account_store, build_saga_log

DURABLE = {"journal_mode": "wal", "synchronous": 2, "foreign_keys": 1}  # 2 = FULL


def pragmas(names: list[str]):  # type: ignore[no-untyped-def]
    def read(conn: sqlite3.Connection) -> dict[str, object]:
        return {name: conn.execute(f"PRAGMA {name}").fetchone()[0] for name in names}

    return read


async def settings_of(database: SqliteDatabase) -> tuple[dict[str, object], ...]:
    """The connection's settings on the event loop's thread, on the writer thread, and on the
    event loop's thread again (the writer thread's timeout must not stay behind)."""
    names = [*DURABLE, "busy_timeout"]
    return (
        await database.read(pragmas(names), on_loop=True),
        await database.read(pragmas(names), on_loop=False),
        await database.read(pragmas(names), on_loop=True),
    )


async def test_every_sqlite_connection_is_wal_with_full_sync(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bank.db'}"
    store = build_account_store(url)
    alone = build_saga_log(f"sqlite:///{tmp_path / 'sagas.db'}")
    shared = build_saga_log(url, next_to=store)
    assert isinstance(store, SqliteAccountStore)
    assert isinstance(alone, SqliteSagaLog)
    assert isinstance(shared, SqliteSagaLog)
    try:
        # In one process the store and the log on one file use ONE connection: its settings
        # are the log's settings too.
        assert shared.database is store.database
        for database in (store.database, alone.database):
            on_loop, on_writer, after = await settings_of(database)
            assert on_loop == after == {**DURABLE, "busy_timeout": 0}
            assert on_writer == {**DURABLE, "busy_timeout": _BUSY_TIMEOUT_MS}
    finally:
        for closing in (shared, alone, store):
            await closing.close()


POOLED = 3  # connections of one pool held at once


def show(names: list[str]) -> str:
    return "SELECT pg_backend_pid(), " + ", ".join(f"current_setting('{n}')" for n in names)


#: As PostgreSQL prints them; 5s is `postgres_db.IDLE_IN_TRANSACTION_TIMEOUT_MS`.
PG_SETTINGS = {"idle_in_transaction_session_timeout": "5s", "synchronous_commit": "on"}


async def test_every_postgres_connection_carries_the_settings_the_stores_rely_on(
    postgres_url: str,
) -> None:
    # The database itself defaults to asynchronous commits: the stores must pin `on` per session
    # rather than inherit whatever the server or database was configured with.
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        name = admin.execute("SELECT current_database()").fetchone()[0]  # type: ignore[index]
        admin.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    store: Any = build_account_store(postgres_url)
    log: Any = build_saga_log(postgres_url)
    names = list(PG_SETTINGS)
    together = threading.Barrier(POOLED)

    def held(conn: Any) -> tuple[object, ...]:
        # Every transaction waits for the others, so the pool must hand out POOLED connections.
        together.wait(timeout=30)
        row: tuple[object, ...] = conn.execute(show(names)).fetchone()
        return row

    log_together = asyncio.Barrier(POOLED)

    async def log_held() -> tuple[object, ...]:
        async with log._tx() as conn:  # the log's own pooled transaction (no public seam)
            await log_together.wait()
            row: tuple[object, ...] = await (await conn.execute(show(names))).fetchone()
            return row

    def snapshot(reader: Any) -> tuple[object, ...]:
        row: tuple[object, ...] = reader._run(
            "SELECT current_setting('transaction_isolation'),"
            " current_setting('transaction_read_only')"
        ).fetchone()
        return row

    try:
        # The account store's pool, through its own transaction runner (no public seam hands out
        # a raw connection, by design).
        rows = await asyncio.gather(*(store._db.transaction(held) for _ in range(POOLED)))
        rows += await asyncio.gather(*(log_held() for _ in range(POOLED)))
        assert len({row[0] for row in rows}) == 2 * POOLED  # distinct server sessions
        assert [dict(zip(names, row[1:], strict=True)) for row in rows] == [PG_SETTINGS] * (
            2 * POOLED
        )
        assert await store.read(snapshot) == ("repeatable read", "on")
    finally:
        await log.close()
        await store.close()


#: As MariaDB prints them: `adapters.mysql_db.SESSION` and `IDLE_TRANSACTION_S`.
MARIADB_SETTINGS = {
    "@@tx_isolation": "READ-COMMITTED",
    "@@time_zone": "+00:00",
    "@@innodb_lock_wait_timeout": 10,
    "@@idle_transaction_timeout": 5,
    "@@sql_mode": "STRICT_ALL_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION",
}


async def test_every_mariadb_connection_carries_the_settings_the_stores_rely_on(
    mysql_url: str,
) -> None:
    """Each of the account store's connections, held at once on its threads, carries the
    session the SQL relies on (READ COMMITTED, UTC, strict, bounded lock waits, a paused
    transaction ended by the server); a read runs in a read-only REPEATABLE READ snapshot."""
    store: Any = build_account_store(mysql_url)
    names = list(MARIADB_SETTINGS)
    together = threading.Barrier(POOLED)

    def held(conn: Any) -> tuple[object, ...]:
        together.wait(timeout=30)  # every transaction waits for the others: POOLED connections
        with conn.cursor() as cursor:
            cursor.execute("SELECT CONNECTION_ID(), " + ", ".join(names))
            row: tuple[object, ...] = cursor.fetchone()
            return row

    def snapshot(reader: Any) -> tuple[object, ...]:
        # The transaction's own level (the session's stays READ COMMITTED for the writes).
        row: tuple[object, ...] = reader._one(
            "SELECT trx_isolation_level, trx_is_read_only FROM information_schema.innodb_trx"
            " WHERE trx_mysql_thread_id = CONNECTION_ID()"
        )
        return row

    try:
        rows = await asyncio.gather(*(store._db.transaction(held) for _ in range(POOLED)))
        assert len({row[0] for row in rows}) == POOLED  # distinct server sessions
        seen = [dict(zip(names, row[1:], strict=True)) for row in rows]
        assert seen == [MARIADB_SETTINGS] * POOLED
        assert await store.read(snapshot) == ("REPEATABLE READ", 1)
    finally:
        await store.close()
