"""MariaDB / MySQL store of a participant: the same statements as SQLite, safe for replicas.

As `participant_kit.postgres` does on PostgreSQL, each call's transaction serialises what it
touches (`adapters.mysql_db` has the session: READ COMMITTED, UTC, strict, lock timeouts):
- `Tx.lock(key)` (the kit calls it first in every call) takes a named lock on the key
  (`GET_LOCK`, released when the transaction ends), so duplicates of one call, or an action and
  its compensation or settlement, never interleave, even on different replicas; READ COMMITTED
  then shows each the other's committed record;
- a handler reads the rows it will change with `tx.for_update` (`SELECT ... FOR UPDATE`);
- `PRIMARY KEY (operation, key)` stays the backstop: a duplicate key, a deadlock or a lock wait
  timeout runs the whole call once more (it then replays the winner's answer).
Statements are the kit's and the service's portable SQL, translated by
`adapters.mysql_dialect` (placeholders, the reserved column `key`, `ON CONFLICT`, `TEXT` keys in
`CREATE TABLE`). Tables are created at start-up, serialised across processes by a named lock;
MySQL commits each `CREATE TABLE` by itself, and `IF NOT EXISTS` lets a start-up that crashed
half-way finish the job. Driver errors become `StorageError` (an unknown outcome: 503).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

import pymysql

from repository_after.adapters.mysql_db import Conn, connect, undo_to_savepoint
from repository_after.adapters.mysql_dialect import translate, translate_schema
from repository_after.adapters.mysql_transactions import MysqlDatabase
from repository_after.participant_kit.storage import RECORDS_SCHEMA, Dialect, Row, Tx
from repository_after.service_layer.ports import StorageError

T = TypeVar("T")

_SCHEMA_LOCK = "participant-schema"


def holds_records(database_url: str) -> bool:
    """Whether the database has the kit's records table (see `postgres.holds_records`)."""
    try:
        conn = connect(database_url)
        try:
            with conn.cursor() as cursor:
                cursor.execute(
                    "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema ="
                    " DATABASE() AND table_name = 'participant_records'"
                )
                return bool(cursor.fetchone()[0])
        finally:
            conn.close()
    except pymysql.Error as exc:
        raise StorageError(f"mysql: {exc}") from exc


class MysqlTx:
    dialect: Dialect = "mysql"
    for_update = " FOR UPDATE"

    def __init__(self, db: MysqlDatabase, conn: Conn) -> None:
        self._db = db
        self.connection = conn
        self._depth = 0

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self.connection.cursor() as cursor:
            cursor.execute(translate(sql), tuple(params))
            return list(cursor.fetchall()) if cursor.description is not None else []

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        self._depth += 1
        name = f"kit_{self._depth}"
        self.execute(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException as exc:
            undo_to_savepoint(self.execute, name, exc)
            raise
        else:
            self.execute(f"RELEASE SAVEPOINT {name}")
        finally:
            self._depth -= 1

    def savepoint(self) -> AbstractContextManager[None]:
        return self._savepoint()

    def lock(self, key: str) -> None:
        self._db.lock(self.connection, key)


class MysqlParticipantStore:
    def __init__(self, database_url: str, *, schema: Sequence[str] = (), name: str = "kit") -> None:
        del name  # PyMySQL's connections carry no application name
        self._db = MysqlDatabase(database_url, component=None)
        try:
            conn = connect(database_url)
            try:
                self._db.lock(conn, _SCHEMA_LOCK)
                with conn.cursor() as cursor:
                    for sql in translate_schema((*RECORDS_SCHEMA, *schema)):
                        cursor.execute(sql, ())
            finally:
                conn.close()  # and with it the named lock
        except pymysql.Error as exc:
            raise StorageError(f"mysql: {exc}") from exc
        self._closed = False

    async def transaction(self, fn: Callable[[Tx], T]) -> T:
        db = self._db
        return await db.transaction(lambda conn: fn(MysqlTx(db, conn)))

    async def read(self, fn: Callable[[Tx], T]) -> T:
        db = self._db
        return await db.transaction(lambda conn: fn(MysqlTx(db, conn)), writes=False)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._db.close()
