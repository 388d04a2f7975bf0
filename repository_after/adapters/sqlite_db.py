"""One SQLite file driven by one dedicated thread.

Why a thread per store: sqlite3 calls block, and the services are asyncio. Running every
transaction on one worker thread keeps the event loop free and serialises writers, so a use case
can read-decide-write without racing another request (`BEGIN IMMEDIATE` also takes the file's
write lock up front, so another process waits instead of failing half-way).

Durability: WAL with `synchronous=FULL`, so a committed transaction is on disk before the caller
hears about it; an acknowledged operation survives SIGKILL and power loss.
Driver errors are translated here into `StorageError`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from repository_after.adapters.migrations import migrate_sqlite
from repository_after.service_layer.ports import StorageError

T = TypeVar("T")


def sqlite_path(database_url: str) -> Path:
    """`sqlite:///relative.db` or `sqlite:////absolute.db` -> Path."""
    prefix = "sqlite:///"
    if not database_url.startswith(prefix):
        raise ValueError(f"not a sqlite URL: {database_url!r}")
    return Path(database_url[len(prefix) :])


@dataclass(frozen=True, slots=True)
class _Job:
    fn: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


def _translate(exc: BaseException) -> BaseException:
    if isinstance(exc, sqlite3.Error):
        return StorageError(f"sqlite: {exc}")
    return exc


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.cancelled():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class SqliteDatabase:
    def __init__(self, path: Path, *, component: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._component = component
        self._queue: list[_Job] = []
        self._queue_lock = threading.Lock()
        self._conn: sqlite3.Connection = self._executor.submit(self._connect).result()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        migrate_sqlite(conn, self._component)  # the schema, versioned: see `migrations`
        return conn

    def _in_transaction(self, fn: Callable[[sqlite3.Connection], T], mode: str) -> T:
        conn = self._conn
        try:
            conn.execute(f"BEGIN {mode}")
        except sqlite3.Error as exc:
            raise StorageError(f"sqlite: {exc}") from exc
        try:
            result = fn(conn)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise StorageError(f"sqlite: {exc}") from exc
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return result

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` in a write transaction; return once it is committed (on disk).

        Group commit: writes that arrive while the thread is busy are queued and then run as one
        transaction, each inside its own savepoint (a raising `fn` rolls back only its own
        changes), with one COMMIT — one fsync — for the whole batch. Nobody hears "done" before
        that COMMIT, so durability is the same as one transaction each, at a fraction of the
        fsyncs under concurrency.
        """
        loop = asyncio.get_running_loop()
        job = _Job(fn, loop.create_future(), loop)
        with self._queue_lock:
            self._queue.append(job)
        self._executor.submit(self._drain)
        result: T = await job.future
        return result

    def _drain(self) -> None:
        with self._queue_lock:
            jobs, self._queue = self._queue, []
        if not jobs:
            return  # an earlier drain took these jobs into its batch
        conn = self._conn
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in jobs:
                conn.execute("SAVEPOINT job")
                try:
                    value = job.fn(conn)
                except BaseException as exc:  # settle every future, whatever the job raised
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    outcomes.append((False, _translate(exc)))
                else:
                    conn.execute("RELEASE job")
                    outcomes.append((True, value))
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            outcomes = [(False, _translate(exc))] * len(jobs)
        for job, (ok, value) in zip(jobs, outcomes, strict=True):
            job.loop.call_soon_threadsafe(_settle, job.future, ok, value)

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._in_transaction, fn, "DEFERRED")

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._conn.close)
        self._executor.shutdown(wait=True)
