"""One SQLite file, one connection, one batch of transactions at a time.

Why: sqlite3 calls block, and the services are asyncio. Transactions run one batch at a time,
which serialises writers, so a use case can read-decide-write without racing another request
(`BEGIN IMMEDIATE` also takes the file's write lock up front, so another process waits instead
of failing half-way). Whatever may block for long runs on a dedicated writer thread, so the
event loop stays free: every COMMIT (the fsync), waits for another connection's lock, and jobs
that may scan. Short jobs (a few rows by key) run their statements on the event loop's thread
(`write(on_loop=True)`), which saves one GIL hand-over per statement.

Durability: WAL with `synchronous=FULL`, so a committed transaction is on disk before the caller
hears about it; an acknowledged operation survives SIGKILL and power loss.

Speed (docs/performance.md): jobs that queue while a batch runs become the next batch, one
transaction and one fsync (group commit, see `write`); reads ride the same batches; each event
loop is woken once per batch. Short jobs run on the event loop's thread and only the COMMIT on
the writer thread (`on_loop`). In one process the account store and the saga log share one
`SqliteDatabase` (`share`), so they never wait on each other's file lock.
Driver errors are translated here into `StorageError`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from repository_after.adapters.migrations import migrate_sqlite
from repository_after.service_layer.ports import StorageError

T = TypeVar("T")


def sqlite_path(database_url: str) -> Path:
    """`sqlite:///relative.db` or `sqlite:////absolute.db` -> Path."""
    prefix = "sqlite:///"
    if not database_url.startswith(prefix):
        raise ValueError(f"not a sqlite URL: {database_url!r}")
    return Path(database_url[len(prefix) :])


class _Job(NamedTuple):
    """One queued transaction (a named tuple: built per write, far cheaper than a dataclass)."""

    fn: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop
    writes: bool
    on_loop: bool


_Outcomes = list[tuple[bool, Any]]
#: SQLite's primary result codes for "another connection holds the lock".
_CONTENDED = frozenset({5, 6})  # SQLITE_BUSY, SQLITE_LOCKED
#: How long a contended batch waits for another connection's lock, on the writer thread.
_BUSY_TIMEOUT_MS = 10_000


class _Contended(Exception):
    """The batch met another connection's lock; it runs again on the writer thread."""


def _translate(exc: BaseException) -> BaseException:
    if isinstance(exc, sqlite3.Error):
        error = StorageError(f"sqlite: {exc}")
        error.__cause__ = exc  # as `raise … from exc` would: the driver's error stays visible
        return error
    return exc


def _contended(exc: BaseException) -> bool:
    if not isinstance(exc, sqlite3.OperationalError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in _CONTENDED


def _settle_all(
    settled: list[tuple[_Job, tuple[bool, Any]]],
    loop: asyncio.AbstractEventLoop,
    then: Callable[[], None] | None,
) -> None:
    for job, (ok, value) in settled:
        if job.future.cancelled():
            continue
        if ok:
            job.future.set_result(value)
        else:
            job.future.set_exception(value)
    if then is not None:  # after the woken callers, so that their next jobs join the batch
        loop.call_soon(then)


Migrate = Callable[[sqlite3.Connection, str], object]  # (autocommit connection, component)


class SqliteDatabase:
    """`migrate`: the numbered steps of `migrations`, or a user's own schema (the participant
    kit's: each service gives its tables at run time). If it fails, the file is left free."""

    def __init__(self, path: Path, *, component: str, migrate: Migrate = migrate_sqlite) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._queue: list[_Job] = []
        self._lock = threading.Lock()
        self._busy = False  # a batch is running or committing; the queue waits for it
        self._users = 1
        self._conn: sqlite3.Connection = self._executor.submit(self._connect).result()
        self._components, self._migrate = {component}, migrate
        try:
            self._executor.submit(migrate, self._conn, component).result()
        except BaseException:
            self._executor.submit(self._conn.close).result()
            self._executor.shutdown()
            raise

    def share(self, component: str) -> SqliteDatabase:
        """Let another component (same file, same process) use this connection and thread.

        One writer per file instead of two: no waiting on SQLite's file lock (its busy handler
        sleeps), and one group commit, one fsync, covers both components' writes. Each user
        calls `close`; the last one closes the connection."""
        if component not in self._components:
            self._executor.submit(self._migrate, self._conn, component).result()
            self._components.add(component)
        self._users += 1
        return self

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # Waiting for another connection's lock happens on the writer thread only (`_contended`
        # batches set a timeout there); on the event loop's thread a lock fails at once.
        conn.execute("PRAGMA busy_timeout = 0")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        return conn  # the schema comes from `migrations`, per component

    async def write(self, fn: Callable[[sqlite3.Connection], T], *, on_loop: bool = False) -> T:
        """Run `fn` in a write transaction; return once it is committed (on disk).

        Group commit: writes that arrive while a batch is running or committing are queued and
        then run as one transaction with one COMMIT — one fsync — for the whole batch. Nobody
        hears "done" before that COMMIT, so durability is the same as one transaction each, at a
        fraction of the fsyncs under concurrency. A raising `fn` must undo only its own changes:
        if any job of a batch raises, the batch is rolled back and run again with each job in its
        own savepoint (jobs are plain functions of the connection, so running one again is safe).

        `on_loop`: `fn` touches a few rows by key. A batch of such jobs runs its statements on the
        event loop's own thread and only the COMMIT (the fsync) on the writer thread: one thread
        hand-over per batch instead of one per statement (each statement releases the GIL, and
        getting it back from a busy event loop can take a whole switch interval). A batch with
        any other job, or one that meets another connection's lock, runs on the writer thread.
        """
        return await self._submit(fn, writes=True, on_loop=on_loop)

    async def read(self, fn: Callable[[sqlite3.Connection], T], *, on_loop: bool = False) -> T:
        """Run `fn` on a consistent snapshot. Reads queue with the writes and run in the same
        batches: a read sees what the batch's earlier writes changed, and like them it is
        answered only after the batch's COMMIT, so nobody sees a write that is later lost.
        `on_loop` as for `write`."""
        return await self._submit(fn, writes=False, on_loop=on_loop)

    async def _submit(
        self, fn: Callable[[sqlite3.Connection], T], *, writes: bool, on_loop: bool
    ) -> T:
        loop = asyncio.get_running_loop()
        job = _Job(fn, loop.create_future(), loop, writes, on_loop)
        with self._lock:
            self._queue.append(job)
            idle, self._busy = not self._busy, True
        if idle:  # one batch at a time; later jobs wait for the next
            loop.call_soon(self._start)
        result: T = await job.future
        return result

    def _start(self) -> None:
        """On an event loop's thread: take the queue as one batch and run it."""
        with self._lock:
            jobs, self._queue = self._queue, []
            if not jobs:
                self._busy = False
                return
        if not all(job.on_loop for job in jobs):
            self._executor.submit(self._run_on_thread, jobs)
            return
        try:
            outcomes = self._run_batch(jobs)
        except _Contended:
            self._executor.submit(self._run_on_thread, jobs)
            return
        except Exception as exc:  # every job is answered, or the queue would stall for good
            self._finish(jobs, self._failed(jobs, exc))
            return
        if any(job.writes for job in jobs):
            self._executor.submit(self._commit, jobs, outcomes)
        else:
            self._finish(jobs, self._committed(jobs, outcomes))

    def _run_on_thread(self, jobs: list[_Job]) -> None:
        """The whole batch on the writer thread, waiting for other connections' locks."""
        conn = self._conn
        try:
            conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
            try:
                outcomes = self._committed(jobs, self._run_batch(jobs, contended_ok=True))
            finally:
                conn.execute("PRAGMA busy_timeout = 0")
        except Exception as exc:
            outcomes = self._failed(jobs, exc)
        self._finish(jobs, outcomes)

    def _commit(self, jobs: list[_Job], outcomes: _Outcomes) -> None:
        """On the writer thread: the batch's COMMIT (its fsync), then answer everyone."""
        self._finish(jobs, self._committed(jobs, outcomes))

    def _committed(self, jobs: list[_Job], outcomes: _Outcomes) -> _Outcomes:
        try:
            self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            return self._failed(jobs, exc)
        return outcomes

    def _failed(self, jobs: list[_Job], exc: Exception) -> _Outcomes:
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # nothing was committed; the next BEGIN starts afresh
        return [(False, exc)] * len(jobs)  # translated once, in `_finish`

    def _run_batch(self, jobs: list[_Job], *, contended_ok: bool = False) -> _Outcomes:
        """BEGIN and every job, leaving the transaction open for the COMMIT. Without savepoints
        first; if a job raises, once more with one savepoint per job. Raises `_Contended` if a
        statement met another connection's lock (unless `contended_ok`: the lock was waited for
        as long as the busy timeout allows, so the error is the job's)."""
        outcomes = self._run_jobs(jobs, savepoints=False)
        if all(ok for ok, _ in outcomes):
            return outcomes
        if not contended_ok and any(_contended(value) for ok, value in outcomes if not ok):
            raise _Contended
        outcomes = self._run_jobs(jobs, savepoints=True)
        if not contended_ok and any(_contended(value) for ok, value in outcomes if not ok):
            self._conn.execute("ROLLBACK")
            raise _Contended
        return outcomes

    def _run_jobs(self, jobs: list[_Job], *, savepoints: bool) -> _Outcomes:
        conn = self._conn
        outcomes: _Outcomes = []
        try:
            conn.execute("BEGIN IMMEDIATE" if any(job.writes for job in jobs) else "BEGIN")
        except sqlite3.OperationalError as exc:
            if _contended(exc):
                raise _Contended from exc
            raise
        for job in jobs:
            if savepoints:
                conn.execute("SAVEPOINT job")
            try:
                value = job.fn(conn)
            except BaseException as exc:  # settle every future, whatever the job raised
                outcomes.append((False, exc))
                if not savepoints:
                    conn.execute("ROLLBACK")  # run again with savepoints
                    return outcomes
                conn.execute("ROLLBACK TO job")
            else:
                outcomes.append((True, value))
            if savepoints:
                conn.execute("RELEASE job")
        return outcomes

    def _finish(self, jobs: list[_Job], outcomes: _Outcomes) -> None:
        """Answer every job (one wake-up per event loop), then start the next batch if any."""
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Job, tuple[bool, Any]]]] = {}
        for job, (ok, value) in zip(jobs, outcomes, strict=True):
            by_loop.setdefault(job.loop, []).append((job, (ok, value if ok else _translate(value))))
        with self._lock:
            following = self._queue[0].loop if self._queue else None
            if following is None:
                self._busy = False
        if following is not None and following not in by_loop:
            following.call_soon_threadsafe(self._start)
        for loop, settled in by_loop.items():
            start = self._start if loop is following else None
            loop.call_soon_threadsafe(_settle_all, settled, loop, start)

    async def close(self) -> None:
        self._users -= 1
        if self._users > 0:
            return  # another component still uses this connection
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._conn.close)
        self._executor.shutdown(wait=True)
