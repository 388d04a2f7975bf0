"""PostgreSQL adapter of the write-ahead saga log, shared by several orchestrator workers.

The shared SQL (`sql_saga_log`) over psycopg's async pool, opened on first use (it needs the
running event loop); each plan runs in one transaction. Same tables as SQLite (`migrations`,
component `sagas`); `lease_until` is a timestamptz by the database's clock (`now()`, the
transaction's start), one clock for every worker. `claim` selects with `FOR UPDATE SKIP LOCKED`,
so two workers claiming at once never get the same saga and never wait on each other.
Many-row statements are ONE statement over arrays (`unnest`), never executemany: that is a
pipeline, and a pipeline left half-sent by a paused process would hold its locks without ever
arming the server's idle-in-transaction timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from functools import cache, partial
from typing import Any, TypeVar

import psycopg
import psycopg_pool

from repository_after.adapters.postgres_db import POOL_SIZE, migrate_url, postgres_conninfo
from repository_after.adapters.sql_plan import Columns, Plan, Result, Rows, Stmt, drive_async
from repository_after.adapters.sql_saga_log import SqlSagaLog
from repository_after.service_layer.ports import StorageError

T = TypeVar("T")
AsyncConn = psycopg.AsyncConnection[tuple[Any, ...]]


@cache
def _unnest(sql: str, alias: str, columns: Columns) -> str:
    """`sql` over one typed array per column, in ONE statement (the module docstring says why);
    cached, as the texts are few and events are written on every saga step."""
    arrays = ", ".join(f"%s::{kind}[]" for _, kind in columns)
    names = ", ".join(name for name, _ in columns)
    return sql.replace("?", "%s").format(rows=f"unnest({arrays}) AS {alias}({names})")


async def _execute(conn: AsyncConn, stmt: Stmt) -> Result:
    cursor = await conn.execute(stmt.sql, stmt.args)
    rows = await cursor.fetchall() if cursor.description is not None else []
    return Result(rows, cursor.rowcount)


class PostgresSagaLog(SqlSagaLog):
    placeholder = "%s"
    now_sql = "now()"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    ids_sql = "SELECT json_array_elements_text(?::json)"

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._pool: psycopg_pool.AsyncConnectionPool[AsyncConn] | None = None
        self._opening = asyncio.Lock()

    @property
    def url(self) -> str:
        """The log's database URL (choreography opens the log's outbox on it)."""
        return self._url

    def _until(self) -> str:
        return f"{self.now_sql} + ? * interval '1 second'"

    def _rows(self, sql: str, args: Sequence[Any], rows: Rows) -> Stmt:
        arrays = [list(c) for c in zip(*rows.values, strict=True)] or [[] for _ in rows.columns]
        return Stmt(_unnest(sql, rows.alias, rows.columns), (*args, *arrays))

    async def _run(self, plan: Callable[[], Plan[T]], *, writes: bool, on_loop: bool) -> T:
        del writes, on_loop  # every plan is one transaction on a pooled connection
        async with self._tx() as conn:
            return await drive_async(plan(), partial(_execute, conn))

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[AsyncConn]:
        """One transaction on a pooled connection; driver errors become StorageError."""
        try:
            if self._pool is None:
                async with self._opening:
                    if self._pool is None:
                        await asyncio.to_thread(migrate_url, self._url, "sagas")
                        pool: psycopg_pool.AsyncConnectionPool[AsyncConn] = (
                            psycopg_pool.AsyncConnectionPool(
                                postgres_conninfo(self._url),
                                min_size=1,
                                max_size=POOL_SIZE,
                                open=False,
                                name="sagabank-sagas",
                            )
                        )
                        await pool.open(wait=True)
                        self._pool = pool
            async with self._pool.connection() as conn, conn.transaction():
                yield conn
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise StorageError(f"postgres: {exc}") from exc

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
