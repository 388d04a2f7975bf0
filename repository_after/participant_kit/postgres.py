"""PostgreSQL store of a participant: the same statements as SQLite, safe for several replicas.

SQLite serialises a participant with one writer; here each call's transaction serialises what
it touches, as `adapters/postgres_accounts.py` does for the account service:
- `Tx.lock(key)` (the kit calls it first in every call) takes `pg_advisory_xact_lock` on the key,
  so duplicates of one call, or an action and its compensation or settlement, never interleave,
  even on different replicas; READ COMMITTED then shows each the other's committed record;
- a handler reads the rows it will change with `tx.for_update` (`SELECT … FOR UPDATE`), so two
  calls under different keys that touch one row (two orders for the last unit) decide one after
  the other;
- `PRIMARY KEY (operation, key)` stays as the backstop: a unique violation, a serialisation
  failure or a deadlock runs the whole call once more (it then replays the winner's answer).
Statements are written with `?` placeholders (the SQLite style) and translated here. Sessions
pin `synchronous_commit=on` (`adapters.postgres_db.SESSION_OPTIONS`): a committed answer is on
disk before it is sent. Driver errors become `StorageError` (an unknown outcome: 503).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

import psycopg
import psycopg_pool

from repository_after.adapters.postgres_db import RETRYABLE, postgres_conninfo
from repository_after.participant_kit.storage import RECORDS_SCHEMA, Dialect, Row, Tx
from repository_after.service_layer.ports import StorageError

T = TypeVar("T")
Conn = psycopg.Connection[tuple[Any, ...]]

POOL_SIZE = 10
#: Serialises schema creation across processes starting together (CREATE … IF NOT EXISTS races).
SCHEMA_LOCK = 0x5A6A_B1C7
_LOCK_KEY = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"


@functools.lru_cache(maxsize=512)
def translate(sql: str) -> str:
    """`?` placeholders -> `%s` (a literal `%` doubled, as psycopg expects)."""
    return sql.replace("%", "%%").replace("?", "%s")


def holds_records(database_url: str) -> bool:
    """Whether the database has the kit's records table (a tool that only purges them, as
    `sagabank gc`, must not create the kit's tables where no participant ever ran)."""
    try:
        with psycopg.connect(postgres_conninfo(database_url)) as conn:
            row = conn.execute("SELECT to_regclass('participant_records') IS NOT NULL").fetchone()
    except psycopg.Error as exc:
        raise StorageError(f"postgres: {exc}") from exc
    return bool(row and row[0])


class PostgresTx:
    dialect: Dialect = "postgres"
    for_update = " FOR UPDATE"

    def __init__(self, conn: Conn) -> None:
        self.connection = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = self.connection.execute(translate(sql), tuple(params))
        return cursor.fetchall() if cursor.description is not None else []

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        with self.connection.transaction():  # nested: a SAVEPOINT
            yield

    def savepoint(self) -> AbstractContextManager[None]:
        return self._savepoint()

    def lock(self, key: str) -> None:
        self.connection.execute(_LOCK_KEY, (key,))


class PostgresParticipantStore:
    def __init__(self, database_url: str, *, schema: Sequence[str] = (), name: str = "kit") -> None:
        conninfo = postgres_conninfo(database_url)
        try:
            with psycopg.connect(conninfo) as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                tx = PostgresTx(conn)
                for sql in (*RECORDS_SCHEMA, *schema):
                    tx.execute(sql)
        except psycopg.Error as exc:
            raise StorageError(f"postgres: {exc}") from exc
        self._pool = psycopg_pool.ConnectionPool(
            conninfo, min_size=1, max_size=POOL_SIZE, open=True, name=f"participant-{name}"
        )
        self._executor = ThreadPoolExecutor(max_workers=POOL_SIZE, thread_name_prefix="kit-pg")
        self._closed = False
        #: the database (choreography: stores on one database are one outbox, one relay)
        self.identity = conninfo

    def _run(self, fn: Callable[[Tx], T], writes: bool) -> T:
        for attempt in (1, 2):
            try:
                with self._pool.connection() as conn, conn.transaction():
                    if not writes:
                        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                    return fn(PostgresTx(conn))
            except RETRYABLE as exc:
                if attempt == 2:
                    raise StorageError(f"postgres: {exc}") from exc
            except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
                raise StorageError(f"postgres: {exc}") from exc
        raise AssertionError("unreachable")

    async def transaction(self, fn: Callable[[Tx], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, fn, True)

    async def read(self, fn: Callable[[Tx], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, fn, False)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._pool.close)
        self._executor.shutdown(wait=True)
