"""The order saga's invariants in one function (`service_layer.order_audit.audit_orders`), fed
the services' reads: clean books pass, and each broken invariant is named (the end-to-end tests
feed it real services; these show what it catches)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from repository_after.service_layer.order_audit import OrderBooks, audit_orders

CLEAN_AUDIT = {"violations": []}


def entry(n: int, tx: str, operation: str, delta: int) -> dict[str, Any]:
    return {"entry_id": n, "transaction_id": tx, "operation": operation, "delta": delta}


def order(order_id: str, saga: str, state: str, total: int = 300) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "created_key": f"{saga}:create",
        "customer": "acc-01",
        "merchant": "acc-02",
        "total": total,
        "state": state,
    }


#: One confirmed order (s-1: charged, paid, sold) and one cancelled (s-2: charged, refunded,
#: released), as the services report them: the money under each saga's id, as a transfer's.
CLEAN = OrderBooks(
    account_audit={"total_opened": 2000, "total_balance": 2000, "violations": []},
    entries=[
        entry(1, "s-1", "debit", -300),
        entry(2, "s-1", "credit", 300),
        entry(3, "s-2", "debit", -100),
        entry(4, "s-2", "compensate_debit", 100),
    ],
    stock=[{"sku": "apple", "opened": 5, "available": 3, "reserved": 0, "sold": 2}],
    inventory_audit=CLEAN_AUDIT,
    reservations={
        "s-1:reserve": {"state": "sold"},
        "s-2:reserve": {"state": "released"},
    },
    orders=[order("o-1", "s-1", "confirmed"), order("o-2", "s-2", "cancelled", 100)],
    orders_audit=CLEAN_AUDIT,
    sagas={"s-1": "completed", "s-2": "compensated"},
)


def test_clean_books_pass() -> None:
    assert audit_orders(CLEAN) == []


def test_the_same_entry_read_twice_counts_once() -> None:
    assert audit_orders(replace(CLEAN, entries=[*CLEAN.entries, *CLEAN.entries])) == []
    # read twice in a row (an account listed twice, its pages interleaved): every other entry
    # still counts
    twice = [e for e in CLEAN.entries for _ in range(2)]
    assert audit_orders(replace(CLEAN, entries=twice)) == []


def test_stock_held_in_every_column_adds_up() -> None:
    row = {"sku": "pear", "opened": 10, "available": 5, "reserved": 3, "sold": 2}
    assert audit_orders(replace(CLEAN, stock=[*CLEAN.stock, row])) == []


@pytest.mark.parametrize(
    ("change", "found"),
    [
        (
            {"account_audit": {**CLEAN.account_audit, "total_balance": 2001}},
            "money: balances sum to 2001, 2000 was opened",
        ),
        (
            {"stock": [{"sku": "apple", "opened": 5, "available": 3, "reserved": 1, "sold": 2}]},
            "stock 'apple': available 3 + reserved 1 + sold 2 != opened 5",
        ),
        ({"inventory_audit": {"violations": ["x"]}}, "inventory: x"),
        ({"orders_audit": {"violations": ["y"]}}, "orders: y"),
        (
            {"reservations": {**CLEAN.reservations, "s-1:reserve": {"state": "reserved"}}},
            "order 'o-1' (saga 's-1') is confirmed but its reservation is not sold",
        ),
        (
            {"entries": CLEAN.entries[:1] + CLEAN.entries[2:]},
            "order 'o-1' (saga 's-1') is confirmed for 300 but charged 300 and paid 0",
        ),
        (  # charged twice under its saga id: two debit entries, each of the total
            {"entries": [*CLEAN.entries, entry(5, "s-1", "debit", -300)]},
            "order 'o-1' (saga 's-1') is confirmed for 300 but charged 600 and paid 300",
        ),
        (
            {"reservations": {**CLEAN.reservations, "s-2:reserve": {"state": "reserved"}}},
            "order 'o-2' (saga 's-2') is cancelled but its reservation is reserved",
        ),
        (
            {"entries": CLEAN.entries[:3]},
            "order 'o-2' (saga 's-2') is cancelled but charged 100 and paid 0",
        ),
        (
            {
                "orders": [*CLEAN.orders, order("o-3", "s-3", "pending")],
                "sagas": {**CLEAN.sagas, "s-3": "compensated"},
            },
            "order 'o-3' (saga 's-3') is pending but its saga is compensated",
        ),
        (
            {"orders": [*CLEAN.orders, order("o-3", "s-3", "pending")]},
            "order 'o-3' (saga 's-3') is pending but its saga is unknown",
        ),
        (
            {"account_audit": {**CLEAN.account_audit, "violations": ["applied_twice: t"]}},
            "accounts: applied_twice: t",
        ),
        (
            {
                "account_audit": {
                    **CLEAN.account_audit,
                    "violations": ["money_created: s-1 credited 300 against a net debit of 0"],
                }
            },
            "accounts: money_created: s-1 credited 300 against a net debit of 0",
        ),
    ],
)
def test_each_broken_invariant_is_named(change: dict[str, Any], found: str) -> None:
    assert found in audit_orders(replace(CLEAN, **change))


def test_a_pending_order_of_a_running_saga_is_no_violation() -> None:
    running = replace(
        CLEAN,
        orders=[*CLEAN.orders, order("o-3", "s-3", "pending")],
        sagas={**CLEAN.sagas, "s-3": "reserving"},
    )
    assert audit_orders(running) == []


def test_money_under_the_old_per_step_keys_is_not_the_orders() -> None:
    """The charge and the payment are read under the saga id only: entries under
    `<saga>:charge` / `<saga>:pay` (an unreleased draft's keys) are no order's."""
    per_step = [
        entry(1, "s-1:charge", "debit", -300),
        entry(2, "s-1:pay", "credit", 300),
        *CLEAN.entries[2:],
    ]
    assert audit_orders(replace(CLEAN, entries=per_step)) == [
        "order 'o-1' (saga 's-1') is confirmed for 300 but charged 0 and paid 0"
    ]
