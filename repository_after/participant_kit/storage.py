"""Where a participant keeps its business tables and its records: one database, one transaction.

The kit's guarantees hold because an operation's record is written in the same local transaction
as the business change it answers; so the kit and the service share one connection per call:
`ParticipantStore.transaction(fn)` runs the SYNC `fn(tx)` in one transaction and commits it
before returning, and `tx` is what a handler sees (`Tx`).

`Tx` is a small, dialect-neutral face of the connection: `execute(sql, params)` with `?`
placeholders (translated on PostgreSQL), `savepoint()` (how a refusal undoes a handler's partial
work but keeps the transaction), and `lock(key)`, which serialises everything done under one
key (an action, its compensation and its settlement share it): a no-op on SQLite, where one
writer at a time is the rule (`BEGIN IMMEDIATE`), an advisory transaction lock on PostgreSQL.

SQLite (`SqliteParticipantStore`): a real file, WAL, `synchronous=FULL` (a committed answer is
on disk before it is sent), a busy timeout so another process's transaction is waited for, one
connection on one dedicated thread so the event loop never blocks. Every driver error becomes
`StorageError` (an unknown outcome for the caller: 503, nothing recorded).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from repository_after.service_layer.ports import StorageError

T = TypeVar("T")
Row = tuple[Any, ...]
Dialect = Literal["sqlite", "postgres"]

#: How long a transaction waits for another process's write lock on the same SQLite file.
BUSY_TIMEOUT_MS = 10_000

#: The kit's own table: one row per (operation, key), the exact answer given and the request it
#: answered (canonical JSON), written in the same transaction as the business change.
RECORDS_SCHEMA: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS participant_records (operation TEXT NOT NULL,"
    " key TEXT NOT NULL, request TEXT NOT NULL, status_code INTEGER NOT NULL,"
    " body TEXT NOT NULL, applied INTEGER NOT NULL, created_at TEXT NOT NULL,"
    " PRIMARY KEY (operation, key))",
)


class Tx(Protocol):
    """One open transaction, as a handler sees it."""

    dialect: Dialect
    #: " FOR UPDATE" where a read must lock the rows it will change (PostgreSQL), else "".
    for_update: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Run one statement (`?` placeholders); its rows (empty for a write)."""
        ...

    def savepoint(self) -> AbstractContextManager[None]:
        """A nested scope: an exception leaving it undoes only what was done inside."""
        ...

    def lock(self, key: str) -> None:
        """Serialise, until the transaction ends, with every other transaction locking `key`."""
        ...


class ParticipantStore(Protocol):
    async def transaction(self, fn: Callable[[Tx], T]) -> T:
        """Run `fn` in one write transaction; return once it is committed (on disk)."""
        ...

    async def read(self, fn: Callable[[Tx], T]) -> T:
        """Run `fn` on one consistent snapshot (writes are not allowed)."""
        ...

    async def close(self) -> None: ...


class SqliteTx:
    dialect: Dialect = "sqlite"
    for_update = ""  # the one writer already excludes everyone else

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.connection = conn
        self._depth = 0

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self.connection.execute(sql, tuple(params)).fetchall()

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        self._depth += 1
        name = f"kit_{self._depth}"
        self.connection.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self.connection.execute(f"ROLLBACK TO {name}")
            self.connection.execute(f"RELEASE {name}")
            raise
        else:
            self.connection.execute(f"RELEASE {name}")
        finally:
            self._depth -= 1

    def savepoint(self) -> AbstractContextManager[None]:
        return self._savepoint()

    def lock(self, key: str) -> None:
        """Nothing to do: `BEGIN IMMEDIATE` already holds the file's only write lock."""


class SqliteParticipantStore:
    """A participant's SQLite file: its `schema` (the service's tables) and the kit's records."""

    def __init__(self, path: Path, *, schema: Sequence[str] = ()) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._closed = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="participant")
        self._conn = self._executor.submit(self._connect).result()
        try:
            self._executor.submit(self._run, lambda tx: _create(tx, schema), True).result()
        except BaseException:
            self._executor.submit(self._conn.close).result()
            self._executor.shutdown()
            raise

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.Error as exc:
            raise StorageError(f"sqlite: {exc}") from exc
        return conn

    def _run(self, fn: Callable[[Tx], T], writes: bool) -> T:
        """On the store's thread: BEGIN, `fn`, COMMIT; any exception rolls everything back."""
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE" if writes else "BEGIN")
            try:
                value = fn(SqliteTx(conn))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise StorageError(f"sqlite: {exc}") from exc
        return value

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
        await loop.run_in_executor(self._executor, self._conn.close)
        self._executor.shutdown(wait=True)


def _create(tx: Tx, schema: Sequence[str]) -> None:
    for sql in (*RECORDS_SCHEMA, *schema):
        tx.execute(sql)
