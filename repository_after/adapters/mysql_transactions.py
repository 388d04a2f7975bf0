"""Transactions on a MariaDB / MySQL database, each on its worker thread's own connection.

`MysqlDatabase.transaction(fn)` runs the SYNC `fn(conn)` in one transaction in a worker thread
(at most `POOL_SIZE`, each keeping one connection with the session of `mysql_db.SESSION`), so
the event loop stays free: READ COMMITTED for writes, a read-only REPEATABLE READ snapshot for
reads. Named locks (`lock`) end with the transaction: they belong to the session in MySQL, so
they are released right after the COMMIT or ROLLBACK, and a waiter then reads the winner's
committed rows. A duplicate key, a deadlock or a lock wait timeout runs the whole transaction
once more; any other driver error, or the second race, becomes `StorageError` (an unknown
outcome: 503). A connection the server closed while idle is replaced at the next BEGIN.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pymysql

from repository_after.adapters.mysql_db import (
    LOCK_KEY,
    RETRYABLE_CODES,
    Conn,
    connect,
    error_code,
    migrate_url,
)
from repository_after.service_layer.ports import StorageError

T = TypeVar("T")

POOL_SIZE = 10
RELEASE_LOCKS = "DO RELEASE_ALL_LOCKS()"
_WRITE = ("START TRANSACTION",)
_SNAPSHOT = (
    "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
    "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
)


class MysqlDatabase:
    """Transactions on one database, each on its worker thread's own connection."""

    def __init__(self, database_url: str, *, component: str | None) -> None:
        if component is not None:
            migrate_url(database_url, component)
        self._url = database_url
        self._local = threading.local()
        self._open: set[Conn] = set()
        self._guard = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    def _connection(self) -> Conn:
        conn: Conn | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self._url)
            self._local.conn = conn
            with self._guard:
                self._open.add(conn)
        return conn

    def _discard(self, conn: Conn) -> None:
        self._local.conn = None
        with self._guard:
            self._open.discard(conn)
        if conn.open:  # PyMySQL refuses to close a connection twice
            conn.close()

    def lock(self, conn: Conn, key: str) -> None:
        """Serialise with every other transaction locking `key`, until this one ends."""
        with conn.cursor() as cursor:
            cursor.execute(LOCK_KEY, (key,))
            if cursor.fetchone()[0] != 1:
                raise StorageError("mysql: timed out waiting for a key's lock")
        self._local.locked = True

    def _begin(self, start: tuple[str, ...]) -> Conn:
        """This thread's connection, in a new transaction. A connection the server closed while
        it sat idle (`wait_timeout`, a restart) fails here, before anything was done: it is
        replaced once, so the caller does not see a 503 for it."""
        for attempt in (1, 2):
            conn = self._connection()
            try:
                with conn.cursor() as cursor:
                    for sql in start:
                        cursor.execute(sql)
                return conn
            except pymysql.OperationalError:
                self._discard(conn)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _once(self, fn: Callable[[Conn], T], start: tuple[str, ...]) -> T:
        self._local.locked = False
        conn = self._begin(start)
        try:
            result = fn(conn)
            conn.commit()
            return result
        except BaseException:
            try:
                conn.rollback()
            except pymysql.Error:
                self._discard(conn)
            raise
        finally:
            if self._local.locked and conn.open:
                try:
                    with conn.cursor() as cursor:
                        cursor.execute(RELEASE_LOCKS)  # named locks end with the transaction
                except pymysql.Error:
                    self._discard(conn)

    def _run(self, fn: Callable[[Conn], T], start: tuple[str, ...]) -> T:
        for attempt in (1, 2):
            try:
                return self._once(fn, start)
            except pymysql.Error as exc:
                if attempt == 2 or error_code(exc) not in RETRYABLE_CODES:
                    raise StorageError(f"mysql: {exc}") from exc
        raise AssertionError("unreachable")

    async def transaction(self, fn: Callable[[Conn], T], *, writes: bool = True) -> T:
        """`fn(conn)` in one transaction (READ COMMITTED); `writes=False`: one consistent,
        read-only snapshot (REPEATABLE READ), so an audit under load sees consistent books."""
        start = _WRITE if writes else _SNAPSHOT
        if self._executor is None:  # first use, or the first after `close`
            self._executor = ThreadPoolExecutor(POOL_SIZE, thread_name_prefix="mysql")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run, fn, start)

    async def close(self) -> None:
        """Close every connection; a later transaction starts afresh (the app's lifespan may
        close its container and start again)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            await asyncio.get_running_loop().run_in_executor(None, executor.shutdown, True)
        with self._guard:
            for conn in self._open:
                if conn.open:
                    conn.close()
            self._open.clear()
