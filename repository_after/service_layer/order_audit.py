"""The order saga's invariants, across the three services' own reads.

`audit_orders(books)` takes what each participant says about itself (its `GET /audit` and a few
reads) and what the orchestrator says about each order's saga, and returns one line per broken
invariant:

1. money is conserved: the account balances sum to what was opened;
2. per SKU, available + reserved + sold = opened (and the inventory's own audit is clean);
3. every confirmed order has exactly its reservation sold, its customer charged the total (the
   debit under the saga id, not compensated) and its merchant paid it (the credit under the
   saga id);
4. every cancelled order holds no reservation (none, or released) and moved no money (no net
   debit, no credit);
5. no order is left pending once its saga settled (at rest: terminal, or parked for an
   operator) — and the orders service's own audit is clean (no order both confirmed and
   cancelled, every state matching its records);
6. the account service's own audit is clean: an order's charge and payment are keyed by its
   saga id (`domain/order.py`), as a transfer's debit and credit, so the account service relates
   them like any transfer's and any finding of its audit is a violation.

The order's saga id is the key its `create` ran under, less `:create` (`KeyScheme.STEP`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from repository_after.domain.saga_definition import AT_REST

Json = Mapping[str, Any]


@dataclass(frozen=True)
class OrderBooks:
    """What the services say, as their HTTP reads answer it.

    `account_audit`: the account service's `GET /audit`; `entries`: the ledger entries
    (`GET /accounts/{id}/entries`) of every customer and merchant; `stock`: the inventory's
    `GET /stock` rows; `inventory_audit`: its `GET /audit`; `reservations`: reservation id ->
    its `GET /reservations/{id}` (absent: none); `orders`: the orders service's `GET /orders`;
    `orders_audit`: its `GET /audit`; `sagas`: saga id -> its status (`GET /sagas/order/{id}`)."""

    account_audit: Json
    entries: Sequence[Json]
    stock: Sequence[Json]
    inventory_audit: Json
    reservations: Mapping[str, Json]
    orders: Sequence[Json]
    orders_audit: Json
    sagas: Mapping[str, str] = field(default_factory=dict)


def saga_of_order(order: Json) -> str:
    return str(order["created_key"]).removesuffix(":create")


def _moved(entries: Iterable[Json]) -> dict[tuple[str, str], int]:
    """(transaction id, operation) -> the sum of its deltas (a debit is negative)."""
    moved: dict[tuple[str, str], int] = defaultdict(int)
    seen: set[int] = set()
    for entry in entries:
        if entry["entry_id"] in seen:  # the same entry read twice (an account listed twice)
            continue
        seen.add(entry["entry_id"])
        moved[str(entry["transaction_id"]), str(entry["operation"])] += int(entry["delta"])
    return moved


def audit_orders(books: OrderBooks) -> list[str]:
    violations: list[str] = []
    total_opened = books.account_audit["total_opened"]
    total_balance = books.account_audit["total_balance"]
    if total_balance != total_opened:
        violations.append(f"money: balances sum to {total_balance}, {total_opened} was opened")
    for row in books.stock:
        if row["available"] + row["reserved"] + row["sold"] != row["opened"]:
            violations.append(
                f"stock {row['sku']!r}: available {row['available']} + reserved "
                f"{row['reserved']} + sold {row['sold']} != opened {row['opened']}"
            )
    violations += [f"inventory: {v}" for v in books.inventory_audit["violations"]]
    violations += [f"orders: {v}" for v in books.orders_audit["violations"]]
    violations += [f"accounts: {v}" for v in books.account_audit["violations"]]

    moved = _moved(books.entries)
    for order in books.orders:
        saga = saga_of_order(order)
        name = f"order {order['order_id']!r} (saga {saga!r})"
        total = int(order["total"])
        charged = -(moved[saga, "debit"] + moved[saga, "compensate_debit"])
        paid = moved[saga, "credit"]
        held = books.reservations.get(f"{saga}:reserve")
        state = order["state"]
        if state == "confirmed":
            if held is None or held["state"] != "sold":
                violations.append(f"{name} is confirmed but its reservation is not sold")
            if (charged, paid) != (total, total):
                violations.append(
                    f"{name} is confirmed for {total} but charged {charged} and paid {paid}"
                )
        elif state == "cancelled":
            if held is not None and held["state"] != "released":
                violations.append(f"{name} is cancelled but its reservation is {held['state']}")
            if (charged, paid) != (0, 0):
                violations.append(f"{name} is cancelled but charged {charged} and paid {paid}")
        elif state == "pending":
            status = books.sagas.get(saga)
            if status is None or status in AT_REST:
                violations.append(f"{name} is pending but its saga is {status or 'unknown'}")
    return violations
