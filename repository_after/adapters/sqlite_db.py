"""One SQLite file driven by one dedicated thread.

Why a thread per store: sqlite3 calls block, and the services are asyncio. Running every
transaction on one worker thread keeps the event loop free and serialises writers, so a use case
can read-decide-write without racing another request (`BEGIN IMMEDIATE` also takes the file's
write lock up front, so another process waits instead of failing half-way).

Durability: WAL with `synchronous=FULL`, so a committed transaction is on disk before the caller
hears about it; an acknowledged operation survives SIGKILL and power loss.

Speed (docs/performance.md): jobs that queue while the thread is busy run as one batch, one
transaction and one fsync (group commit, see `write`); reads ride the same batches; one drain is
scheduled per batch and each event loop is woken once per batch. In one process the account
store and the saga log share one `SqliteDatabase` (`share`), so they never wait on each other's
file lock.
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
    writes: bool = True


def _translate(exc: BaseException) -> BaseException:
    if isinstance(exc, sqlite3.Error):
        return StorageError(f"sqlite: {exc}")
    return exc


def _settle_all(settled: list[tuple[_Job, tuple[bool, Any]]]) -> None:
    for job, (ok, value) in settled:
        if job.future.cancelled():
            continue
        if ok:
            job.future.set_result(value)
        else:
            job.future.set_exception(value)


class SqliteDatabase:
    def __init__(self, path: Path, *, component: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._queue: list[_Job] = []
        self._queue_lock = threading.Lock()
        self._drain_scheduled = False
        self._users = 1
        self._conn: sqlite3.Connection = self._executor.submit(self._connect).result()
        self._components = {component}
        self._executor.submit(migrate_sqlite, self._conn, component).result()

    def share(self, component: str) -> SqliteDatabase:
        """Let another component (same file, same process) use this connection and thread.

        One writer per file instead of two: no waiting on SQLite's file lock (its busy handler
        sleeps), and one group commit, one fsync, covers both components' writes. Each user
        calls `close`; the last one closes the connection."""
        if component not in self._components:
            self._executor.submit(migrate_sqlite, self._conn, component).result()
            self._components.add(component)
        self._users += 1
        return self

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn  # the schema comes from `migrations`, per component

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` in a write transaction; return once it is committed (on disk).

        Group commit: writes that arrive while the thread is busy are queued and then run as one
        transaction with one COMMIT — one fsync — for the whole batch. Nobody hears "done" before
        that COMMIT, so durability is the same as one transaction each, at a fraction of the
        fsyncs under concurrency. A raising `fn` must undo only its own changes: if any job of a
        batch raises, the batch is rolled back and run again with each job in its own savepoint
        (jobs are plain functions of the connection, so running one again is safe).
        """
        return await self._submit(fn, writes=True)

    async def _submit(self, fn: Callable[[sqlite3.Connection], T], *, writes: bool) -> T:
        loop = asyncio.get_running_loop()
        job = _Job(fn, loop.create_future(), loop, writes)
        with self._queue_lock:
            self._queue.append(job)
            scheduled, self._drain_scheduled = self._drain_scheduled, True
        if not scheduled:  # one drain per batch, not one executor item per write
            self._executor.submit(self._drain)
        result: T = await job.future
        return result

    def _drain(self) -> None:
        with self._queue_lock:
            jobs, self._queue = self._queue, []
            self._drain_scheduled = False
        if not jobs:
            return
        try:
            outcomes = self._run_batch(jobs, savepoints=False)
            if any(not ok for ok, _ in outcomes):
                outcomes = self._run_batch(jobs, savepoints=True)
        except sqlite3.Error as exc:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            outcomes = [(False, _translate(exc))] * len(jobs)
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, tuple[bool, Any]]]] = {}
        for job, outcome in zip(jobs, outcomes, strict=True):
            by_loop.setdefault(job.loop, []).append((job, outcome))
        for loop, settled in by_loop.items():  # one wake-up per event loop and batch
            loop.call_soon_threadsafe(_settle_all, settled)

    def _run_batch(self, jobs: list[_Job], *, savepoints: bool) -> list[tuple[bool, Any]]:
        """Run every job in one transaction; COMMIT only if none raised or each had a savepoint."""
        conn = self._conn
        outcomes: list[tuple[bool, Any]] = []
        conn.execute("BEGIN IMMEDIATE" if any(job.writes for job in jobs) else "BEGIN")
        for job in jobs:
            if savepoints:
                conn.execute("SAVEPOINT job")
            try:
                value = job.fn(conn)
            except BaseException as exc:  # settle every future, whatever the job raised
                outcomes.append((False, _translate(exc)))
                if not savepoints:
                    conn.execute("ROLLBACK")  # run again with savepoints
                    return outcomes
                conn.execute("ROLLBACK TO job")
            else:
                outcomes.append((True, value))
            if savepoints:
                conn.execute("RELEASE job")
        conn.execute("COMMIT")
        return outcomes

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn` on a consistent snapshot. Reads queue with the writes and run in the same
        batches: a read sees what the batch's earlier writes changed, and like them it is
        answered only after the batch's COMMIT, so nobody sees a write that is later lost."""
        return await self._submit(fn, writes=False)

    async def close(self) -> None:
        self._users -= 1
        if self._users > 0:
            return  # another component still uses this connection
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._conn.close)
        self._executor.shutdown(wait=True)
