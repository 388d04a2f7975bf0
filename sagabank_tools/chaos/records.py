"""The account service's own records, read after it stopped, checked against each saga's end.

`query` reads any service's database (the order saga's check, `order_records.py`, reads the
inventory's and the orders service's with it). For every transfer, what the account service
applied must match the orchestrator's verdict:
- completed   => debit and credit applied, no compensation;
- compensated => credit not applied; compensation recorded, and it reversed money iff the debit
                 was applied (`compensated`) — else it left a tombstone (`nothing_to_compensate`);
- rejected    => nothing applied (the debit, if recorded, was refused);
and no (operation, transaction id) may carry two ledger entries.
Every backend is read with plain SQL: SQLite through `sqlite3`, PostgreSQL through psycopg,
MariaDB (`mysql://`) through PyMySQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Any

Operations = dict[tuple[str, str], str]  # (operation, transaction id) -> recorded status


def query(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    if database_url.startswith("sqlite:///"):
        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"))
        try:
            return list(conn.execute(sql))
        finally:
            conn.close()
    if database_url.startswith(("mysql://", "mariadb://")):
        import pymysql

        from repository_after.adapters.mysql_db import connect_args

        my = pymysql.connect(**connect_args(database_url))
        try:
            with my.cursor() as cursor:
                cursor.execute(sql)
                return list(cursor.fetchall())
        finally:
            my.close()
    import psycopg

    from repository_after.adapters.postgres_db import postgres_conninfo

    with psycopg.connect(postgres_conninfo(database_url)) as pg:
        return list(pg.execute(sql.encode()))


def read_operations(database_url: str) -> Operations:
    rows = query(database_url, "SELECT operation, transaction_id, status FROM operations")
    return {(op, tx): status for op, tx, status in rows}


def applied_twice(database_url: str) -> list[str]:
    rows = query(
        database_url,
        "SELECT operation, transaction_id, COUNT(*) FROM ledger_entries"
        " GROUP BY operation, transaction_id HAVING COUNT(*) > 1",
    )
    return [f"{op} {tx} has {n} ledger entries" for op, tx, n in rows]


def mismatches(statuses: Mapping[str, str], ops: Operations) -> list[str]:
    """Every saga whose final status disagrees with the account service's records."""
    found = []
    for tx_id, status in sorted(statuses.items()):
        debit = ops.get(("debit", tx_id))
        credit = ops.get(("credit", tx_id))
        compensation = ops.get(("compensate_debit", tx_id))
        seen = f"debit={debit} credit={credit} compensate_debit={compensation}"
        if status == "completed":
            ok = debit == credit == "applied" and compensation is None
        elif status == "compensated":
            ok = (
                credit != "applied"
                and compensation in ("compensated", "nothing_to_compensate")
                and (debit == "applied") == (compensation == "compensated")
            )
        elif status == "rejected":
            ok = debit in (None, "rejected") and credit is None and compensation is None
        else:
            continue  # not settled: reported as such by the runner
        if not ok:
            found.append(f"{tx_id} is {status} but the account service recorded {seen}")
    return found
