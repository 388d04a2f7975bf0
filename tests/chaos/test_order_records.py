"""The order run's records check (`sagabank_tools.chaos.order_records.mismatches`) on records made
up here: clean ones pass, whichever keys the charge and the payment went under, and each way a
saga can contradict what the services hold is named."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sagabank_tools.chaos.order_plan import PlannedOrder
from sagabank_tools.chaos.order_records import OrderRecords, mismatches

SOLD = PlannedOrder("s-1", "o-1", "acc-01", "acc-02", (("apple", 2),), 300)
CANCELLED = PlannedOrder("s-2", "o-2", "acc-03", "acc-04", (("pear", 1),), 50)
STATUSES = {"s-1": "completed", "s-2": "compensated"}


def entry(n: int, account: str, key: str, operation: str, delta: int) -> dict[str, Any]:
    return {
        "entry_id": n,
        "account_id": account,
        "transaction_id": key,
        "operation": operation,
        "delta": delta,
    }


def order(planned: PlannedOrder, state: str) -> dict[str, Any]:
    return {
        "order_id": planned.order_id,
        "created_key": f"{planned.transaction_id}:create",
        "customer": planned.customer,
        "merchant": planned.merchant,
        "total": planned.total,
        "state": state,
    }


def records(charge: str = "s-1:charge", pay: str = "s-1:pay") -> OrderRecords:
    return OrderRecords(
        entries=[
            entry(1, "acc-01", charge, "debit", -300),
            entry(2, "acc-02", pay, "credit", 300),
            entry(3, "acc-03", "s-2:charge", "debit", -50),
            entry(4, "acc-03", "s-2:charge", "compensate_debit", 50),
        ],
        orders={"o-1": order(SOLD, "confirmed"), "o-2": order(CANCELLED, "cancelled")},
        reservations={
            "s-1:reserve": {"state": "sold", "lines": [("apple", 2)]},
            "s-2:reserve": {"state": "released", "lines": [("pear", 1)]},
        },
    )


@pytest.mark.parametrize(("charge", "pay"), [("s-1:charge", "s-1:pay"), ("s-1", "s-1")])
def test_clean_records_match_whichever_keys_the_money_went_under(charge: str, pay: str) -> None:
    assert mismatches(STATUSES, [SOLD, CANCELLED], records(charge, pay)) == []


def test_a_compensated_saga_that_never_created_its_order_matches() -> None:
    held = records()
    del held.orders["o-2"], held.reservations["s-2:reserve"]
    assert mismatches(STATUSES, [SOLD, CANCELLED], held) == []


Breakage = Callable[[dict[str, str], OrderRecords], object]


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (lambda s, _: s.update({"s-1": "compensated"}), "s-1 is compensated but its order is con"),
        (lambda s, _: s.update({"s-2": "completed"}), "s-2 is completed but its order is cancel"),
        (lambda _, r: r.orders["o-1"].update(state="pending"), "s-1 is completed but its order is"),
        (lambda _, r: r.orders["o-1"].update(total=299), "s-1 is completed but its order reads"),
        (
            lambda _, r: r.reservations["s-1:reserve"].update(state="reserved"),
            "s-1 is completed but its reservation is reserved",
        ),
        (
            lambda _, r: r.reservations["s-2:reserve"].update(state="reserved"),
            "s-2 is compensated but its reservation is reserved",
        ),
        (
            lambda _, r: r.reservations["s-1:reserve"].update(lines=[("apple", 1)]),
            "s-1 is completed but its reservation holds",
        ),
        (lambda _, r: r.entries.pop(1), "s-1 is completed but the ledger moved {'acc-01': -300}"),
        (lambda _, r: r.entries.pop(3), "s-2 is compensated but the ledger moved {'acc-03': -50}"),
        (
            lambda _, r: r.entries.append(entry(9, "acc-05", "s-9:pay", "credit", 1)),
            "ledger entry s-9:pay belongs to no saga of the run",
        ),
    ],
)
def test_each_contradiction_is_named(breakage: Breakage, expected: str) -> None:
    statuses, held = dict(STATUSES), records()
    breakage(statuses, held)

    found = mismatches(statuses, [SOLD, CANCELLED], held)

    assert len(found) == 1, found
    assert found[0].startswith(expected), found
