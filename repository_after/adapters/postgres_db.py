"""PostgreSQL plumbing shared by the adapters: URLs, migrations, sync transactions in threads.

`PostgresDatabase.transaction(fn)` runs the SYNC `fn(conn)` in one READ COMMITTED transaction on a
pooled connection, in a worker thread sized to the pool, so the event loop stays free. What must
be serialised is serialised by the adapters with row locks and advisory locks, not by a single
writer thread as on SQLite, so several processes can share the database.

A unique violation, a serialisation failure or a deadlock retries the whole transaction once: the
losing use case then sees the winner's committed rows and replays them. Every other driver error
becomes `StorageError` here (an unknown outcome for the caller).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TypeVar

import psycopg
import psycopg_pool
from psycopg import errors as pg_errors
from psycopg.conninfo import make_conninfo

from repository_after.adapters import migrations
from repository_after.service_layer.ports import StorageError

T = TypeVar("T")

#: Races a second run of the transaction resolves (it then sees the winner's rows).
RETRYABLE = (pg_errors.UniqueViolation, pg_errors.SerializationFailure, pg_errors.DeadlockDetected)


#: A transaction left idle this long belongs to a paused or wedged process: the server ends its
#: session, releasing its locks, so a SIGSTOPped worker cannot block the others' claims forever.
IDLE_IN_TRANSACTION_TIMEOUT_MS = 5000

#: Session settings every connection carries. `synchronous_commit=on` is pinned, not inherited:
#: a server or database configured with `off` would acknowledge a commit before it reached the
#: WAL on disk, and a crash could then forget an operation the caller was told had applied.
SESSION_OPTIONS = (
    f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT_MS}"
    " -c synchronous_commit=on"
)


def postgres_conninfo(database_url: str) -> str:
    """`postgres://` or `postgresql://` URL -> the libpq connection string the adapters use."""
    url = re.sub(r"^postgres(ql)?://", "postgresql://", database_url)
    return make_conninfo(url, options=SESSION_OPTIONS)


def migrate(conn: psycopg.Connection[tuple[object, ...]], component: str) -> list[int]:
    """Bring `component` up to date in one transaction, serialised by an advisory lock."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (migrations.PG_MIGRATION_LOCK,))
        conn.execute(migrations.BOOKKEEPING)
        rows = conn.execute(
            "SELECT version FROM schema_migrations WHERE component = %s", (component,)
        ).fetchall()
        return migrations.run(
            lambda sql, params: conn.execute(sql, tuple(params)).close(),
            component,
            "postgres",
            {int(str(v)) for (v,) in rows},
            datetime.now(UTC).isoformat(timespec="microseconds"),
        )


def migrate_url(database_url: str, component: str) -> list[int]:
    try:
        with psycopg.connect(postgres_conninfo(database_url)) as conn:
            return migrate(conn, component)
    except psycopg.Error as exc:
        raise StorageError(f"postgres: {exc}") from exc


#: Connections per pool, and so per store in one process: each account-service or orchestrator
#: process opens at most this many per component, so a deployment's budget is processes x
#: components x POOL_SIZE against the server's `max_connections` (100 by default). A size, not a
#: guarantee: correctness never depends on it (a caller waits for a free connection).
POOL_SIZE = 10


class PostgresDatabase:
    def __init__(self, database_url: str, *, component: str) -> None:
        migrate_url(database_url, component)
        self.url = database_url
        self._pool = psycopg_pool.ConnectionPool(
            postgres_conninfo(database_url),
            min_size=1,
            max_size=POOL_SIZE,
            open=True,
            name=f"sagabank-{component}",
        )
        self._executor = ThreadPoolExecutor(max_workers=POOL_SIZE, thread_name_prefix="postgres")

    def _run(self, fn: Callable[[psycopg.Connection[tuple[object, ...]]], T]) -> T:
        for attempt in (1, 2):
            try:
                with self._pool.connection() as conn, conn.transaction():
                    return fn(conn)
            except RETRYABLE as exc:
                if attempt == 2:
                    raise StorageError(f"postgres: {exc}") from exc
            except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
                raise StorageError(f"postgres: {exc}") from exc
        raise AssertionError("unreachable")

    async def transaction(self, fn: Callable[[psycopg.Connection[tuple[object, ...]]], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, fn)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._pool.close)
        self._executor.shutdown(wait=True)
