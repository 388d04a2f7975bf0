"""The chaos tests' own reading of an order run's books: SQL on its four SQLite files, no
product code and no chaos-tool code, as `books.py` for transfers (the report's verdict alone
would turn green if its checks broke). One `sqlite3` connection attaches the saga log, the
orders' and the inventory's databases to the account service's, and checks:
- the account service's books alone (`books.ledger_problems`);
- the log holds one order saga per planned order, each terminal;
- per SKU, available + reserved + sold = opened, nothing is left reserved, and what was sold is
  exactly the lines of the completed orders;
- a completed saga's order is confirmed, its reservation sold, its customer charged its total
  and its merchant paid it, net; any other saga's order is cancelled or absent, its
  reservation released or absent, and it moved no money and credited nobody;
- no money moved, no order and no reservation exist outside the run's sagas.
A ledger row belongs to the saga its key starts with (`<saga>:<step>`, or the saga id itself).
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from tests.chaos.books import SETTLED, ledger_problems

# The saga a key belongs to: the key up to its first ':' (the whole key when it has none).
SAGA_OF_KEY = "CASE WHEN instr({0}, ':') > 0 THEN substr({0}, 1, instr({0}, ':') - 1) ELSE {0} END"


def problems(
    workdir: Path, *, orders: int, accounts: str = "accounts.db", sagas: str = "sagas.db"
) -> list[str]:
    """`accounts` / `sagas`: the files' names in `workdir` (a choreographed run keeps both in
    one, `sagabank.db`)."""
    found = ledger_problems(f"sqlite:///{workdir / accounts}")
    db = sqlite3.connect(workdir / accounts)
    try:
        for name, file in (
            ("sagas", sagas),
            ("orders", "orders.db"),
            ("inventory", "inventory.db"),
        ):
            db.execute(f"ATTACH DATABASE ? AS {name}_db", (str(workdir / file),))
        found += _order_problems(db, orders)
    finally:
        db.close()
    return found


def _order_problems(db: sqlite3.Connection, planned: int) -> list[str]:
    sagas = {
        saga_id: (status, json.loads(params))
        for saga_id, status, params in db.execute(
            "SELECT saga_id, status, params FROM sagas_db.sagas WHERE definition = 'order'"
        )
    }
    found = [] if len(sagas) == planned else [f"{len(sagas)} order sagas for {planned} orders"]
    found += [f"not terminal: {t} {s}" for t, (s, _) in sorted(sagas.items()) if s not in SETTLED]

    saga = SAGA_OF_KEY.format("transaction_id")
    net: dict[str, dict[str, int]] = {}
    for saga_id, account_id, delta in db.execute(
        f"SELECT {saga}, account_id, SUM(delta) FROM ledger_entries"
        f" GROUP BY {saga}, account_id HAVING SUM(delta) != 0"
    ):
        net.setdefault(saga_id, {})[account_id] = delta
    credited = {
        row[0]
        for row in db.execute(f"SELECT {saga} FROM ledger_entries WHERE operation = 'credit'")
    }
    states = dict(db.execute("SELECT order_id, state FROM orders_db.orders"))
    reservations = dict(db.execute("SELECT reservation_id, state FROM inventory_db.reservations"))

    sold: Counter[str] = Counter()
    for saga_id, (status, params) in sorted(sagas.items()):
        customer, merchant, total = params["customer"], params["merchant"], params["total"]
        seen = (
            states.get(params["order_id"]),
            reservations.get(f"{saga_id}:reserve"),
            net.get(saga_id, {}),
            saga_id in credited,
        )
        if status == "completed":
            sold.update({line["sku"]: line["qty"] for line in params["lines"]})
            allowed = [("confirmed", "sold", {customer: -total, merchant: total}, True)]
        else:
            allowed = [
                (order, held, {}, False)
                for order in (None, "cancelled")
                for held in (None, "released")
            ]
        if seen not in allowed:
            found.append(f"{saga_id} is {status} but (order, reservation, net, credited) = {seen}")

    found += _stock_problems(db, sold)
    found += [f"money moved outside the run: {s}" for s in sorted(net.keys() - sagas.keys())]
    found += [f"credit outside the run: {s}" for s in sorted(credited - sagas.keys())]
    planned_orders = {params["order_id"] for _, params in sagas.values()}
    found += [f"order outside the run: {o}" for o in sorted(states.keys() - planned_orders)]
    found += [
        f"reservation outside the run: {r}"
        for r in sorted(reservations)
        if r.partition(":")[0] not in sagas
    ]
    return found


def _stock_problems(db: sqlite3.Connection, sold_by_orders: Counter[str]) -> list[str]:
    found = []
    rows: list[tuple[Any, ...]] = list(
        db.execute("SELECT sku, opened, available, reserved, sold FROM inventory_db.stock")
    )
    for sku, opened, available, reserved, sold in rows:
        if available + reserved + sold != opened or reserved:
            found.append(
                f"stock {sku}: available {available} + reserved {reserved} + sold {sold},"
                f" opened {opened} (and nothing may stay reserved)"
            )
        if sold != sold_by_orders[sku]:
            found.append(
                f"stock {sku}: sold {sold}, the completed orders bought {sold_by_orders[sku]}"
            )
    if not rows:
        found.append("no stock was opened")
    return found
