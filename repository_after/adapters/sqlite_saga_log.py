"""SQLite adapter of the write-ahead saga log: the shared SQL (`sql_saga_log`) on one SQLite file.

A plan runs as one job of `SqliteDatabase`, so it commits in one durable transaction with the
other jobs of its batch (group commit: one saga-log write is one batch entry). Writes by key
(`create`, `append`, `acquire`, `release`) and loads are `on_loop`, run on the event loop's thread;
scans (`claim`, listings, purges) run on the writer thread. The tables are created and versioned
by `migrations`; `lease_until` is REAL seconds since the epoch by SQLite's own clock (`now_sql`),
the representation the lease columns have had since they were added, so old files need no step.
Many-row statements run once per row: in-process calls cost no round trip, and the statement is
prepared once (sqlite3's statement cache).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from functools import cache, partial
from pathlib import Path
from typing import Any, TypeVar

from repository_after.adapters.sql_plan import Columns, Plan, Result, Rows, Stmt, drive
from repository_after.adapters.sql_saga_log import SqlSagaLog
from repository_after.adapters.sqlite_db import SqliteDatabase

T = TypeVar("T")


@cache
def _one_row(sql: str, alias: str, columns: Columns) -> str:
    """`sql` over a one-row relation with named columns, run once per row (SQLite has no
    arrays); cached, as the texts are few and events are written on every saga step."""
    one = ", ".join(f"? AS {name}" for name, _ in columns)
    return sql.format(rows=f"(SELECT {one}) AS {alias}")


def _execute(conn: sqlite3.Connection, stmt: Stmt) -> Result:
    if stmt.many:
        done = [_execute(conn, Stmt(stmt.sql, args)) for args in stmt.args]
        return Result([row for r in done for row in r.rows], sum(r.rowcount for r in done))
    cursor = conn.execute(stmt.sql, stmt.args)
    return Result(cursor.fetchall(), cursor.rowcount)


class SqliteSagaLog(SqlSagaLog):
    # SQLite 3.40 has no unixepoch('subsec'); 'now' ticks in milliseconds and is the same for
    # every use within one statement.
    now_sql = "((julianday('now') - 2440587.5) * 86400.0)"
    ids_sql = "SELECT value FROM json_each(?)"

    def __init__(self, path: Path, *, share: SqliteDatabase | None = None) -> None:
        """`share`: use that database's connection and writer thread (same file)."""
        self._db = share.share("sagas") if share else SqliteDatabase(path, component="sagas")

    @property
    def database(self) -> SqliteDatabase:
        return self._db

    def _rows(self, sql: str, args: Sequence[Any], rows: Rows) -> Stmt:
        one_row = _one_row(sql, rows.alias, rows.columns)
        if len(rows.values) == 1:  # the usual case: one event a step
            return Stmt(one_row, (*args, *rows.values[0]))
        return Stmt(one_row, [(*args, *row) for row in rows.values], many=True)

    async def _run(self, plan: Callable[[], Plan[T]], *, writes: bool, on_loop: bool) -> T:
        def work(conn: sqlite3.Connection) -> T:
            return drive(plan(), partial(_execute, conn))

        if writes:
            return await self._db.write(work, on_loop=on_loop)
        return await self._db.read(work, on_loop=on_loop)

    async def close(self) -> None:
        await self._db.close()
