"""The order demo's own checks and plan (`entrypoints.order_demo_report`, `order_plan`), on
hand-made books: money and stock must move exactly as the confirmed orders say, a cancellation
names its cause, the verdict fails on any audit finding or unsettled saga, and the plan is the
seed's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from repository_after.domain.saga import (
    EventKind,
    Outcome,
    SagaEvent,
    SagaState,
    SagaStatus,
    StepRole,
)
from repository_after.entrypoints.cli import app
from repository_after.entrypoints.order_demo_report import run_violations, summarise, why_cancelled
from repository_after.entrypoints.order_plan import CUSTOMERS, MERCHANTS, PlannedOrder, plan_orders

PAID = PlannedOrder("s-1", "o-1", "cust-01", "shop-01", (("apple", 2), ("pear", 1)))  # 335
CANCELLED = PlannedOrder("s-2", "o-2", "cust-02", "shop-02", (("bike", 1),))
STATES = {
    "s-1": SagaState(status=SagaStatus.COMPLETED),
    "s-2": SagaState(status=SagaStatus.COMPENSATED),
}
MONEY_BEFORE = {"customers": 1000, "merchants": 0, "total": 1000}
STOCK_BEFORE = {
    "apple": {"opened": 5, "available": 5, "reserved": 0, "sold": 0},
    "pear": {"opened": 5, "available": 5, "reserved": 0, "sold": 0},
}


def stock(apple_sold: int = 2, pear_sold: int = 1, pear_reserved: int = 0) -> dict[str, Any]:
    return {
        "apple": {"opened": 5, "available": 5 - apple_sold, "reserved": 0, "sold": apple_sold},
        "pear": {
            "opened": 5,
            "available": 5 - pear_sold - pear_reserved,
            "reserved": pear_reserved,
            "sold": pear_sold,
        },
    }


def check(money_after: dict[str, int], stock_after: dict[str, Any]) -> list[str]:
    return run_violations(
        [PAID, CANCELLED], STATES, (MONEY_BEFORE, money_after), (STOCK_BEFORE, stock_after)
    )


def test_money_and_stock_moved_as_the_confirmed_orders_say_is_clean() -> None:
    assert PAID.total == 335
    assert check({"customers": 665, "merchants": 335, "total": 1000}, stock()) == []


def test_money_moved_otherwise_than_the_confirmed_orders_is_named() -> None:
    assert check({"customers": 665, "merchants": 336, "total": 1001}, stock()) == [
        "money: total 1000 before, 1001 after",
        "money: merchants moved 336, confirmed orders paid 335",
    ]
    assert check({"customers": 700, "merchants": 300, "total": 1000}, stock()) == [
        "money: merchants moved 300, confirmed orders paid 335",
        "money: customers moved -300, confirmed orders paid 335",
    ]


def test_stock_sold_otherwise_or_left_reserved_is_named() -> None:
    money_after = {"customers": 665, "merchants": 335, "total": 1000}
    assert check(money_after, stock(apple_sold=3, pear_reserved=1)) == [
        "stock 'apple': 3 sold, confirmed orders bought 2",
        "stock 'pear': 1 still reserved",
    ]


def attempt(step: str, outcome: Outcome, error: str | None = None) -> SagaEvent:
    return SagaEvent(
        EventKind.ATTEMPT, at="t", step=step, role=StepRole.ACTION, outcome=outcome, error=error
    )


def test_a_cancellation_names_the_first_refusal_or_unknown_action() -> None:
    refused = [
        attempt("create", Outcome.SUCCEEDED),
        attempt("reserve", Outcome.REJECTED, "out_of_stock"),
    ]
    assert why_cancelled(refused) == "out_of_stock"
    unknown = [
        attempt("create", Outcome.SUCCEEDED),
        attempt("reserve", Outcome.UNKNOWN, "injected_fault"),
        SagaEvent(EventKind.RETRIES_EXHAUSTED, at="t", step="reserve", role=StepRole.ACTION),
        attempt("reserve", Outcome.REJECTED, "late"),  # after: not the cause
    ]
    assert why_cancelled(unknown) == "reserve unknown"


def verdict(account_ok: bool, order_violations: list[str], left_over: int = 0) -> bool:
    found = summarise(
        [PAID],
        {"s-1": SagaState(status=SagaStatus.COMPLETED)},
        options={},
        resumed={},
        left_over=left_over,
        faults={},
        stock=(STOCK_BEFORE, stock()),
        money=(MONEY_BEFORE, MONEY_BEFORE),
        account_audit={"ok": account_ok, "violations": [] if account_ok else ["x"]},
        order_violations=order_violations,
        run_violations=[],
    )
    return bool(found["ok"])


def test_the_verdict_fails_on_any_finding_or_unsettled_saga() -> None:
    assert verdict(True, []) is True
    assert verdict(False, []) is False
    assert verdict(True, ["stock 'apple': …"]) is False
    assert verdict(True, [], left_over=1) is False
    parked = summarise(
        [PAID],
        {"s-1": SagaState(status=SagaStatus.FAILED_NEEDS_ATTENTION)},
        options={},
        resumed={},
        left_over=0,
        faults={},
        stock=(STOCK_BEFORE, STOCK_BEFORE),
        money=(MONEY_BEFORE, MONEY_BEFORE),
        account_audit={"ok": True, "violations": []},
        order_violations=[],
        run_violations=[],
    )
    assert (parked["outcomes"]["parked"], parked["unsettled"], parked["ok"]) == (1, 1, False)


def test_the_plan_is_the_seeds_and_new_ids_each_run() -> None:
    assert plan_orders(5, 30, "r1") == plan_orders(5, 30, "r1")
    assert plan_orders(5, 30, "r1") != plan_orders(6, 30, "r1")
    first, second = plan_orders(5, 30, "r1"), plan_orders(5, 30, "r2")
    assert not {o.order_id for o in first} & {o.order_id for o in second}
    for order in first:
        assert order.customer in CUSTOMERS
        assert order.merchant in MERCHANTS
        assert len({sku for sku, _ in order.lines}) == len(order.lines)
        assert order.params()["total"] == order.total > 0


def test_the_order_demo_refuses_an_account_service_of_the_users(tmp_path: Path) -> None:
    args = ["demo", "--saga", "order", "--accounts-url", "http://127.0.0.1:9", "--data-dir"]
    run = CliRunner().invoke(app, [*args, str(tmp_path / "data")])
    assert run.exit_code == 2
    assert "the order demo starts its own services" in run.output
