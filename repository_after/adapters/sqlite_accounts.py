"""SQLite adapter of the account store: the shared SQL (`sql_accounts`) on one SQLite file.

Serialisation comes from `SqliteDatabase`: one batch of transactions at a time, so the shared
SQL needs no locks here. Operations touch a few rows by key (`on_loop`, run on the event loop's
thread); reads (listings, audits) may scan, so they run on the writer thread. The tables are
created and versioned by `migrations`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from repository_after.adapters.sql_accounts import SqlAccountsTx
from repository_after.adapters.sqlite_db import SqliteDatabase
from repository_after.service_layer.ports import AccountsReader, AccountsTx

T = TypeVar("T")


class SqliteAccountStore:
    def __init__(self, path: Path) -> None:
        # The store opens the file; a saga log in the same process shares it (`database`).
        self._db = SqliteDatabase(path, component="accounts")

    @property
    def database(self) -> SqliteDatabase:
        return self._db

    async def transaction(self, fn: Callable[[AccountsTx], T]) -> T:
        return await self._db.write(lambda conn: fn(SqlAccountsTx(conn)), on_loop=True)

    async def read(self, fn: Callable[[AccountsReader], T]) -> T:
        return await self._db.read(lambda conn: fn(SqlAccountsTx(conn)))

    async def close(self) -> None:
        await self._db.close()
