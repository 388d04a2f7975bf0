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

SQLite (`SqliteParticipantStore`): a real file (or `:memory:`), WAL, `synchronous=FULL` (a
committed answer is on disk before it is sent), a busy timeout so another process's transaction
is waited for, one connection on one dedicated thread so the event loop never blocks. Every
driver error becomes `StorageError` (an unknown outcome for the caller: 503, nothing recorded).

Group commit: the store runs on the account service's engine, `adapters.sqlite_db.SqliteDatabase`
(not a second one): calls that queue while a transaction commits run together as the next one,
with one COMMIT, one fsync, for the group, and nobody is answered before it. A call that raises
(anything but a `Refusal`, which the kit records) undoes only its own writes: the engine runs the
group again with one savepoint per call, so a handler may run twice for one call; only what it
does through `tx` counts, which is the kit's rule anyway. The kit's own savepoints (`Tx.savepoint`)
nest inside the engine's; their names count depth per call (`kit_1`, `kit_2`, ...), and the calls
of a group run one after the other, so a name is never open twice. Calls run on the writer thread
(not `on_loop`): a handler is the service's code and may scan (`audit`); the thread also waits,
not fails, on another process's lock.

Schema: the store hands the engine its own `migrate` (the kit's records table and the service's
tables, `CREATE ... IF NOT EXISTS`, in one transaction) rather than a `participant` component in
`adapters.migrations`: the business tables are given by each service at run time, not numbered
steps the product ships, and the PostgreSQL store creates them the same way.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from repository_after.adapters.sqlite_db import Migrate, SqliteDatabase
from repository_after.service_layer.ports import StorageError

T = TypeVar("T")
Row = tuple[Any, ...]
Dialect = Literal["sqlite", "postgres", "mysql"]

#: How long the schema's creation waits for another process's write lock on the same file (the
#: engine's writer thread waits as long for every group).
BUSY_TIMEOUT_MS = 10_000

#: The kit's own tables: one row per (operation, key), the exact answer given and the request it
#: answered (canonical JSON), written in the same transaction as the business change; and per
#: operation the records retention purged, as running totals (`participant_kit.retention`).
RECORDS_SCHEMA: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS participant_records (operation TEXT NOT NULL,"
    " key TEXT NOT NULL, request TEXT NOT NULL, status_code INTEGER NOT NULL,"
    " body TEXT NOT NULL, applied INTEGER NOT NULL, created_at TEXT NOT NULL,"
    " PRIMARY KEY (operation, key))",
    "CREATE TABLE IF NOT EXISTS participant_retention (operation TEXT PRIMARY KEY,"
    " purged BIGINT NOT NULL, purged_applied BIGINT NOT NULL)",
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
        self.path = path
        self._closed = False
        try:
            self._db = SqliteDatabase(path, component="participant", migrate=_creator(schema))
        except sqlite3.Error as exc:
            raise StorageError(f"sqlite: {exc}") from exc

    def _engine(self) -> SqliteDatabase:
        if self._closed:  # the engine would never answer a call queued after its close
            raise StorageError("the store is closed")
        return self._db

    async def transaction(self, fn: Callable[[Tx], T]) -> T:
        return await self._engine().write(lambda conn: fn(SqliteTx(conn)))

    async def read(self, fn: Callable[[Tx], T]) -> T:
        return await self._engine().read(lambda conn: fn(SqliteTx(conn)))

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._db.close()


def _creator(schema: Sequence[str]) -> Migrate:
    """The kit's `migrate`: its records and the service's tables, all or nothing, waiting for
    another process's write lock as every other write of the store does."""

    def create(conn: sqlite3.Connection, _component: str) -> None:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for sql in (*RECORDS_SCHEMA, *schema):
                    conn.execute(sql)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        finally:
            conn.execute("PRAGMA busy_timeout = 0")  # as the engine keeps it between batches

    return create
