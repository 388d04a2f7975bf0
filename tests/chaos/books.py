"""The chaos tests' own reading of the books: plain SQL on the two databases, no product code.

The chaos report (`sagabank_tools.chaos`) decides whether a run is clean; were its checks broken
(always clean), the chaos tests would pass whatever the product did. So after a run the tests
also open the account service's database and the orchestrator's saga log themselves, read the
raw rows with `sqlite3`, psycopg or PyMySQL, and check in this file, independently of the report:
- money is conserved: the balances add up to the opening balances;
- every balance is its opening balance plus its ledger entries, and none is negative;
- every saga of the run is in a terminal status (nobody resolves by hand in a chaos run, so
  `completed`, `compensated` or `rejected`);
- each (operation, transaction id) is recorded once, in the ledger and in the operations;
- no money moved outside a saga: every ledger entry belongs to one;
- a completed saga debited its source and credited its target by its amount, nothing else;
  a compensated one has no credit, and its debit (if it landed) is exactly undone; a rejected
  one moved nothing.
The first four are `ledger_problems`, which an order run's check (`order_books.py`) shares.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from typing import Any

SETTLED = {"completed", "compensated", "rejected"}

Rows = list[tuple[Any, ...]]


def _select(database_url: str, sql: str) -> Rows:
    if database_url.startswith("sqlite:///"):
        conn = sqlite3.connect(database_url.removeprefix("sqlite:///"))
        try:
            return list(conn.execute(sql))
        finally:
            conn.close()
    if database_url.startswith("mysql://"):
        import pymysql

        from tests.mariadb import plain_connect_args

        my = pymysql.connect(**plain_connect_args(database_url))
        try:
            with my.cursor() as cursor:
                cursor.execute(sql)
                return list(cursor.fetchall())
        finally:
            my.close()
    import psycopg

    with psycopg.connect(database_url) as pg:
        return list(pg.execute(sql.encode()))


def ledger_problems(accounts_url: str) -> list[str]:
    """Everything wrong with the account service's books alone ([] if none): money conserved,
    every balance its opening plus its ledger and none negative, each (operation, key) recorded
    once. (Also what an order run's check, `order_books.py`, starts from.)"""
    accounts = _select(accounts_url, "SELECT account_id, opening_balance, balance FROM accounts")
    ledger = _select(
        accounts_url, "SELECT transaction_id, operation, delta, account_id FROM ledger_entries"
    )
    operations = _select(accounts_url, "SELECT operation, transaction_id FROM operations")
    found: list[str] = []
    opening = sum(row[1] for row in accounts)
    total = sum(row[2] for row in accounts)
    if not accounts or total != opening:
        found.append(f"money not conserved: {len(accounts)} accounts, {opening} -> {total}")
    moved = Counter[str]()
    for _, _, delta, account_id in ledger:
        moved[account_id] += delta
    for account_id, opening_balance, balance in accounts:
        if balance < 0:
            found.append(f"negative balance: {account_id} = {balance}")
        if balance != opening_balance + moved[account_id]:
            found.append(
                f"{account_id}: balance {balance} != opening {opening_balance}"
                f" + ledger {moved[account_id]}"
            )
    recorded = {"ledger": [(op, tx) for tx, op, _, _ in ledger], "operations": operations}
    for name, keys in recorded.items():
        found += [f"{name}: {key} recorded {n} times" for key, n in Counter(keys).items() if n > 1]
    return found


def problems(*, accounts_url: str, sagas_url: str, transfers: int) -> list[str]:
    """Everything wrong with the books after a chaos run of `transfers` transfers ([] if none)."""
    ledger = _select(
        accounts_url, "SELECT account_id, transaction_id, operation, delta FROM ledger_entries"
    )
    saga_rows = _select(sagas_url, "SELECT saga_id, status, params FROM sagas")
    sagas = {saga_id: (status, json.loads(params)) for saga_id, status, params in saga_rows}
    found = ledger_problems(accounts_url)

    if len(sagas) != transfers:
        found.append(f"{len(sagas)} sagas in the log for {transfers} transfers")
    found += [f"not terminal: {t} {s}" for t, (s, _) in sorted(sagas.items()) if s not in SETTLED]

    entries: dict[str, dict[str, tuple[str, int]]] = {}
    for account_id, tx_id, operation, delta in ledger:
        entries.setdefault(tx_id, {})[operation] = (account_id, delta)
    found += [f"money moved outside a saga: {t}" for t in sorted(entries.keys() - sagas.keys())]
    for tx_id, (status, params) in sorted(sagas.items()):
        found += _saga_problems(tx_id, status, params, entries.get(tx_id, {}))
    return found


def _saga_problems(
    tx_id: str, status: str, params: dict[str, Any], moved: dict[str, tuple[str, int]]
) -> list[str]:
    source, target, amount = params["source"], params["target"], params["amount"]
    debited = {"debit": (source, -amount)}
    if status == "completed":
        allowed = [{**debited, "credit": (target, amount)}]
    elif status == "compensated":
        allowed = [{}, {**debited, "compensate_debit": (source, amount)}]
    elif status == "rejected":
        allowed = [{}]
    else:
        return []  # reported above as not terminal
    if moved in allowed:
        return []
    return [f"{tx_id} is {status} ({source} -> {target}, {amount}) but the ledger moved {moved}"]
