"""MariaDB / MySQL adapter of the write-ahead saga log, shared by several orchestrator workers.

The shared SQL (`sql_saga_log`) with its plans, each run in one transaction on `MysqlDatabase`
(PyMySQL in a worker thread, `sql_plan.drive`). Same tables as the other engines (`migrations`,
component `sagas`, dialect `mysql`); `lease_until` is DOUBLE epoch seconds by the SERVER's clock
(`UNIX_TIMESTAMP(NOW(6))`, NOW() being the statement's start), one clock for every worker.
The hooks:
- a relation of many rows (events to insert, leases to renew or release) is ONE JSON parameter
  read by `JSON_TABLE` (MariaDB >= 10.6, MySQL >= 8.0); `UPDATE sagas SET ... FROM rows` is
  written `UPDATE sagas, rows SET ...`, MySQL's multi-table UPDATE;
- `claim` selects with `FOR UPDATE SKIP LOCKED` (MariaDB >= 10.6, MySQL >= 8.0), so two workers
  claiming at once never get the same saga and never wait on each other. It scans the index on
  `created_at` (`FORCE INDEX`): InnoDB locks every row a locking read returns before it is
  sorted, so a sort of all claimable rows would lock them all for the first claimer, and a
  second one would skip them all and claim nothing; in index order the scan stops at `limit`.
What the dialects do not share is rewritten in `_execute`, for the statement shapes the shared
plans use, no others:
- `UPDATE sagas ... WHERE cond RETURNING cols` (MySQL's UPDATE returns no rows): the rows are
  locked first (`SELECT saga_id ... WHERE cond FOR UPDATE`, or the claim's own `SKIP LOCKED`
  select when `cond` is `saga_id IN (SELECT ...)`), then updated by id, then read back by id:
  the same rows, the same values, as this transaction holds them locked throughout;
- `INSERT ... ON CONFLICT DO NOTHING`: the plain INSERT, a duplicate key (1062) counted as no
  row inserted (only that statement is undone; InnoDB keeps the transaction).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import cache, partial
from typing import Any, TypeVar

import orjson
import pymysql

from repository_after.adapters.mysql_db import Conn
from repository_after.adapters.mysql_transactions import MysqlDatabase
from repository_after.adapters.sql_plan import Columns, Plan, Result, Rows, Stmt, drive
from repository_after.adapters.sql_saga_log import SqlSagaLog

T = TypeVar("T")

_TYPES = {"int": "BIGINT", "bigint": "BIGINT", "text": "LONGTEXT"}
_KEY_TYPE = "VARCHAR(255)"
_RETURNING = re.compile(
    r"UPDATE (?P<tables>.+?) SET (?P<set>.+?) WHERE (?P<where>.+) RETURNING (?P<cols>.+)", re.S
)
_SUBSELECT = re.compile(r"saga_id IN \((?P<select>SELECT saga_id FROM sagas .+)\)", re.S)
_UPDATE_FROM = re.compile(r"UPDATE sagas SET (?P<set>.+?) FROM \{rows\}", re.S)
_ASSIGNED = re.compile(r"(^|, )(\w+) =")
_DO_NOTHING = " ON CONFLICT DO NOTHING"
_FROM_SAGAS = "FROM sagas "
_FROM_SAGAS_BY_AGE = "FROM sagas FORCE INDEX (sagas_by_age) "
_DUPLICATE_KEY = 1062


@cache
def _json_table(alias: str, columns: Columns) -> str:
    """The relation of one JSON array of rows (each row an array), as `alias(columns)`."""
    cols = ", ".join(
        f"{name} {_KEY_TYPE if name == 'saga_id' or name == 'owner' else _TYPES[kind]}"
        f" PATH '$[{i}]'"
        for i, (name, kind) in enumerate(columns)
    )
    return f"JSON_TABLE(%s, '$[*]' COLUMNS ({cols})) AS {alias}"


def _ids(ids: Sequence[Any]) -> str:
    return ", ".join("%s" for _ in ids)


def _fetch(conn: Conn, sql: str, args: Sequence[Any]) -> Result:
    with conn.cursor() as cursor:
        cursor.execute(sql, tuple(args))
        return Result(list(cursor.fetchall()), cursor.rowcount)


def _update_returning(conn: Conn, found: re.Match[str], args: Sequence[Any]) -> Result:
    """`UPDATE ... RETURNING` as lock, update by id, read back by id (module docstring)."""
    n_tables = found["tables"].count("%s")
    n_set = found["set"].count("%s")
    table_args, set_args = args[:n_tables], args[n_tables : n_tables + n_set]
    where_args = args[n_tables + n_set :]
    subselect = _SUBSELECT.fullmatch(found["where"])
    if subselect is not None:
        lock = subselect["select"].replace(_FROM_SAGAS, _FROM_SAGAS_BY_AGE, 1)
    else:
        lock = f"SELECT sagas.saga_id FROM {found['tables']} WHERE {found['where']} FOR UPDATE"
    ids = [saga_id for (saga_id,) in _fetch(conn, lock, (*table_args, *where_args)).rows]
    if not ids:
        return Result([], 0)
    _fetch(
        conn, f"UPDATE sagas SET {found['set']} WHERE saga_id IN ({_ids(ids)})", (*set_args, *ids)
    )
    back = _fetch(conn, f"SELECT {found['cols']} FROM sagas WHERE saga_id IN ({_ids(ids)})", ids)
    return Result(back.rows, len(ids))


def _execute(conn: Conn, stmt: Stmt) -> Result:
    if stmt.sql.endswith(_DO_NOTHING):
        try:
            return _fetch(conn, stmt.sql.removesuffix(_DO_NOTHING), stmt.args)
        except pymysql.IntegrityError as exc:
            if exc.args[0] != _DUPLICATE_KEY:
                raise
            return Result([], 0)
    found = _RETURNING.fullmatch(stmt.sql)
    if found is not None:
        return _update_returning(conn, found, stmt.args)
    return _fetch(conn, stmt.sql, stmt.args)


class MysqlSagaLog(SqlSagaLog):
    placeholder = "%s"
    now_sql = "UNIX_TIMESTAMP(NOW(6))"
    skip_locked = " FOR UPDATE SKIP LOCKED"
    ids_sql = (
        "SELECT saga_id FROM JSON_TABLE(%s, '$[*]' COLUMNS (saga_id VARCHAR(255) PATH '$')) AS ids"
    )

    def __init__(self, database_url: str) -> None:
        self._db = MysqlDatabase(database_url, component="sagas")

    def _stmt(self, sql: str, args: Sequence[Any] = ()) -> Stmt:
        return Stmt(sql.replace("?", "%s"), args)

    def _rows(self, sql: str, args: Sequence[Any], rows: Rows) -> Stmt:
        relation = _json_table(rows.alias, rows.columns)
        values = orjson.dumps([list(row) for row in rows.values]).decode()
        sql = sql.replace("?", "%s")
        update = _UPDATE_FROM.match(sql)
        if update is not None:  # the relation's parameter comes first in MySQL's order
            assigned = _ASSIGNED.sub(r"\1sagas.\2 =", update["set"])  # `held` has them too
            sql = f"UPDATE sagas, {relation} SET {assigned}" + sql[update.end() :]
            return Stmt(sql, (values, *args))
        return Stmt(sql.format(rows=relation), (*args, values))

    async def _run(self, plan: Callable[[], Plan[T]], *, writes: bool, on_loop: bool) -> T:
        del on_loop  # every plan is one transaction on a worker thread's connection
        return await self._db.transaction(
            lambda conn: drive(plan(), partial(_execute, conn)), writes=writes
        )

    async def close(self) -> None:
        await self._db.close()
