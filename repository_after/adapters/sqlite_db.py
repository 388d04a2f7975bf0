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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from repository_after.service_layer.ports import StorageError

T = TypeVar("T")


def sqlite_path(database_url: str) -> Path:
    """`sqlite:///relative.db` or `sqlite:////absolute.db` -> Path."""
    prefix = "sqlite:///"
    if not database_url.startswith(prefix):
        raise ValueError(f"not a sqlite URL: {database_url!r}")
    return Path(database_url[len(prefix) :])


class SqliteDatabase:
    def __init__(self, path: Path, *, schema: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._schema = schema
        self._conn: sqlite3.Connection = self._executor.submit(self._connect).result()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.executescript(f"BEGIN IMMEDIATE;{self._schema}COMMIT;")
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
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._in_transaction, fn, "IMMEDIATE")

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._in_transaction, fn, "DEFERRED")

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._conn.close)
        self._executor.shutdown(wait=True)
