"""The order saga's records check: each saga's final status against what every service holds.

Read from the three databases after the services stopped (plain SQL, `records.query`): the
account service's ledger, the orders service's orders, the inventory's reservations. A row
belongs to the saga whose id prefixes its key (`<saga>:<step>`, or the saga id itself), so the
check holds whichever key the charge and the payment are sent under. Per planned order:
- completed   => its order (the planned customer, merchant and total) is confirmed, its
                 reservation sold with exactly the order's lines, the customer debited the total
                 and the merchant credited it, net, and no other account touched;
- compensated / rejected => its order cancelled or never created, its reservation released or
                 never made, and no money moved: no credit, any debit compensated;
and no ledger entry, order or reservation belongs to a saga outside the plan.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sagabank_tools.chaos.order_plan import PlannedOrder
from sagabank_tools.chaos.records import query

Json = dict[str, Any]


def saga_of(key: str) -> str:
    return key.partition(":")[0]


@dataclass(frozen=True)
class OrderRecords:
    entries: list[Json]  # ledger entries: entry_id, account_id, transaction_id, operation, delta
    orders: dict[str, Json]  # order id -> order_id, created_key, customer, merchant, total, state
    reservations: dict[str, Json]  # reservation id -> state, lines [(sku, qty)] in order


def read(*, accounts: str, orders: str, inventory: str) -> OrderRecords:
    """The records of the three services, from their databases' URLs."""
    entry_keys = ("entry_id", "account_id", "transaction_id", "operation", "delta")
    entries = query(accounts, f"SELECT {', '.join(entry_keys)} FROM ledger_entries")
    order_keys = ("order_id", "created_key", "customer", "merchant", "total", "state")
    order_rows = query(orders, f"SELECT {', '.join(order_keys)} FROM orders")
    reserved = query(inventory, "SELECT reservation_id, state FROM reservations")
    lines: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for reservation_id, sku, qty in query(
        inventory, "SELECT reservation_id, sku, qty FROM reservation_lines ORDER BY position"
    ):
        lines[reservation_id].append((sku, qty))
    return OrderRecords(
        entries=[dict(zip(entry_keys, row, strict=True)) for row in entries],
        orders={row[0]: dict(zip(order_keys, row, strict=True)) for row in order_rows},
        reservations={r: {"state": s, "lines": lines[r]} for r, s in reserved},
    )


def mismatches(
    statuses: Mapping[str, str], planned: Sequence[PlannedOrder], records: OrderRecords
) -> list[str]:
    """Every saga whose final status disagrees with the services' records, and every record
    that belongs to no saga of the plan."""
    sagas = {order.transaction_id for order in planned}
    found = [
        f"{kind} {key} belongs to no saga of the run"
        for kind, keys in (
            ("ledger entry", [e["transaction_id"] for e in records.entries]),
            ("order created under", [o["created_key"] for o in records.orders.values()]),
            ("reservation", list(records.reservations)),
        )
        for key in keys
        if saga_of(key) not in sagas
    ]
    moved: dict[str, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
    for entry in records.entries:
        account_and_operation = (entry["account_id"], entry["operation"])
        moved[saga_of(entry["transaction_id"])][account_and_operation] += entry["delta"]
    for order in planned:
        status = statuses.get(order.transaction_id)
        if status not in ("completed", "compensated", "rejected"):
            continue  # not settled: reported as such by the runner
        problem = _problem(order, status, records, moved[order.transaction_id])
        if problem:
            found.append(f"{order.transaction_id} is {status} but {problem}")
    return found


def _problem(
    order: PlannedOrder, status: str, records: OrderRecords, moved: Mapping[tuple[str, str], int]
) -> str | None:
    held = records.orders.get(order.order_id)
    reservation = records.reservations.get(f"{order.transaction_id}:reserve")
    net: dict[str, int] = defaultdict(int)
    for (account, _), delta in moved.items():
        net[account] += delta
    money = {account: delta for account, delta in net.items() if delta}
    if status == "completed":
        planned = (order.order_id, order.customer, order.merchant, order.total)
        if held is None or held["state"] != "confirmed":
            return f"its order is {held and held['state']}"
        if (held["order_id"], held["customer"], held["merchant"], held["total"]) != planned:
            return f"its order reads {held}"
        if reservation is None or reservation["state"] != "sold":
            return f"its reservation is {reservation and reservation['state']}"
        if reservation["lines"] != list(order.lines):
            return f"its reservation holds {reservation['lines']}"
        if money != {order.customer: -order.total, order.merchant: order.total}:
            return f"the ledger moved {money}"
        return None
    if held is not None and held["state"] != "cancelled":
        return f"its order is {held['state']}"
    if reservation is not None and reservation["state"] != "released":
        return f"its reservation is {reservation['state']}"
    credits = {account for account, operation in moved if operation == "credit"}
    if money or credits:
        return f"the ledger moved {money} (credited: {sorted(credits)})"
    return None
