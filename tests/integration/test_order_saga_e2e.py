"""The order saga end to end over real HTTP on loopback: the account service, the inventory and
the orders services each served by uvicorn as its own app (roles `accounts`, `inventory`,
`orders`, each on its own SQLite file), and an orchestrator (role `orchestrator`) that finds
the two new services through `SAGABANK_SERVICES`. A happy order; out of stock; insufficient
funds; an unknown credit settled by `void_credit` both ways. After each, the order saga's
invariants across the three services' own reads (`service_layer.order_audit`), the account
service's own audit among them: clean, as after transfers (the order's money is keyed by its
saga id)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from repository_after.domain.saga_definition import AT_REST
from repository_after.service_layer.order_audit import OrderBooks, audit_orders, saga_of_order
from tests.integration.observability_support import (
    orchestrator_client,
    orchestrator_settings,
    served,
    settings,
)

OPENING = 1000  # each of acc-01 (the customer) and acc-02 (the merchant)
STOCK = {"apple": 5, "pear": 3}


@dataclass
class Stack:
    sagas: httpx.AsyncClient  # the orchestrator (ASGI)
    accounts: httpx.AsyncClient
    inventory: httpx.AsyncClient
    orders: httpx.AsyncClient


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with open_stack(tmp_path) as opened:
        yield opened


@asynccontextmanager
async def open_stack(tmp_path: Path, **inventory: object) -> AsyncIterator[Stack]:
    """The three services (`inventory`: more settings of the inventory's) and the orchestrator,
    with `STOCK` opened."""
    common = {"demo_accounts": 2, "demo_balance": OPENING}
    async with (
        served(settings(tmp_path, "accounts", role="accounts", **common)) as accounts_url,
        served(settings(tmp_path, "inventory", role="inventory", **inventory)) as inventory_url,
        served(settings(tmp_path, "orders", role="orders")) as orders_url,
    ):
        services = {"inventory": {"url": inventory_url}, "orders": {"url": orders_url}}
        config = orchestrator_settings(
            tmp_path, accounts_url, services=services, retry_attempts=1, transfer_wait=30
        )
        async with (
            orchestrator_client(config) as sagas,
            httpx.AsyncClient(base_url=accounts_url) as accounts,
            httpx.AsyncClient(base_url=inventory_url) as inventory,
            httpx.AsyncClient(base_url=orders_url) as orders,
        ):
            for sku, qty in STOCK.items():
                opened = await inventory.post("/stock", json={"sku": sku, "qty": qty})
                assert opened.status_code == 200, opened.text
            yield Stack(sagas, accounts, inventory, orders)


def order(order_id: str, total: int, **qty: int) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "customer": "acc-01",
        "merchant": "acc-02",
        "lines": [{"sku": sku, "qty": n} for sku, n in qty.items()],
        "total": total,
    }


async def run(stack: Stack, saga_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Start the order saga and wait (with a deadline) until it is at rest; its view."""
    started = await stack.sagas.post("/sagas/order", json=body, headers={"transaction-id": saga_id})
    assert started.status_code in (200, 202), started.text
    async with asyncio.timeout(30):
        while True:
            view: dict[str, Any] = (await stack.sagas.get(f"/sagas/order/{saga_id}")).json()
            if view["status"] in AT_REST:
                return view
            await asyncio.sleep(0.02)


async def books(stack: Stack) -> OrderBooks:
    orders = (await stack.orders.get("/orders", params={"limit": 1000})).json()["orders"]
    reservations, sagas = {}, {}
    for one in orders:
        saga = saga_of_order(one)
        held = await stack.inventory.get(f"/reservations/{saga}:reserve")
        if held.status_code == 200:
            reservations[f"{saga}:reserve"] = held.json()
        sagas[saga] = (await stack.sagas.get(f"/sagas/order/{saga}")).json()["status"]
    entries = []
    for account in ("acc-01", "acc-02"):
        read = await stack.accounts.get(f"/accounts/{account}/entries", params={"limit": 1000})
        entries += read.json()
    return OrderBooks(
        account_audit=(await stack.accounts.get("/audit")).json(),
        entries=entries,
        stock=(await stack.inventory.get("/stock")).json()["stock"],
        inventory_audit=(await stack.inventory.get("/audit")).json(),
        reservations=reservations,
        orders=orders,
        orders_audit=(await stack.orders.get("/audit")).json(),
        sagas=sagas,
    )


async def balances(stack: Stack) -> dict[str, int]:
    listed = (await stack.accounts.get("/accounts")).json()
    return {a["account_id"]: a["balance"] for a in listed["accounts"]}


async def stock(stack: Stack) -> dict[str, dict[str, int]]:
    rows = (await stack.inventory.get("/stock")).json()["stock"]
    return {row.pop("sku"): row for row in rows}


async def state(stack: Stack, order_id: str) -> str:
    return str((await stack.orders.get(f"/orders/{order_id}")).json()["state"])


async def assert_invariants(stack: Stack) -> None:
    """The order audit, and the account service's own audit: clean (an order's money is keyed
    by its saga id, so the account service relates its debit and its credit as a transfer's)."""
    assert audit_orders(await books(stack)) == []
    report = (await stack.accounts.get("/audit")).json()
    assert (report["ok"], report["violations"]) == (True, []), report


def calls(view: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(step, operation, its answer's status word or error) of every attempt, in order."""
    return [(a["step"], a["operation"], a["result"] or a["error"]) for a in view["attempts"]]


async def test_a_happy_order_sells_the_stock_moves_the_money_and_confirms(stack: Stack) -> None:
    view = await run(stack, "s-happy", order("o-1", 300, apple=2, pear=1))
    assert view["status"] == "completed", view
    assert calls(view) == [
        ("create", "create", "created"),
        ("reserve", "reserve", "reserved"),
        ("charge", "debit", "applied"),
        ("pay", "credit", "applied"),
        ("sell", "sell", "sold"),
        ("confirm", "confirm", "confirmed"),
    ]
    assert await state(stack, "o-1") == "confirmed"
    assert await balances(stack) == {"acc-01": OPENING - 300, "acc-02": OPENING + 300}
    assert await stock(stack) == {
        "apple": {"opened": 5, "available": 3, "reserved": 0, "sold": 2},
        "pear": {"opened": 3, "available": 2, "reserved": 0, "sold": 1},
    }
    held = (await stack.inventory.get("/reservations/s-happy:reserve")).json()
    assert held["state"] == "sold"
    await assert_invariants(stack)


async def test_out_of_stock_cancels_the_order_and_reserves_or_charges_nothing(
    stack: Stack,
) -> None:
    view = await run(stack, "s-short", order("o-2", 300, apple=2, pear=4))
    assert view["status"] == "compensated", view
    assert calls(view) == [
        ("create", "create", "created"),
        ("reserve", "reserve", "out_of_stock"),
        ("create", "cancel", "cancelled"),
    ]
    assert await state(stack, "o-2") == "cancelled"
    assert await balances(stack) == {"acc-01": OPENING, "acc-02": OPENING}
    assert all(row["available"] == row["opened"] for row in (await stock(stack)).values())
    missing = await stack.inventory.get("/reservations/s-short:reserve")
    assert missing.status_code == 404
    await assert_invariants(stack)


async def test_insufficient_funds_releases_the_reservation_and_cancels_the_order(
    stack: Stack,
) -> None:
    view = await run(stack, "s-poor", order("o-3", OPENING + 1, apple=1))
    assert view["status"] == "compensated", view
    assert calls(view) == [
        ("create", "create", "created"),
        ("reserve", "reserve", "reserved"),
        ("charge", "debit", "insufficient_funds"),
        ("reserve", "release", "released"),
        ("create", "cancel", "cancelled"),
    ]
    assert await state(stack, "o-3") == "cancelled"
    assert await balances(stack) == {"acc-01": OPENING, "acc-02": OPENING}
    assert (await stock(stack))["apple"] == {
        "opened": 5,
        "available": 5,
        "reserved": 0,
        "sold": 0,
    }
    held = (await stack.inventory.get("/reservations/s-poor:reserve")).json()
    assert held["state"] == "released"
    await assert_invariants(stack)


async def faults(stack: Stack, mode: str, rate: float) -> None:
    put = await stack.accounts.put("/admin/faults", json={"rate": rate, "mode": mode})
    assert put.status_code == 200, put.text


async def test_an_unknown_credit_voided_compensates_in_reverse(stack: Stack) -> None:
    await faults(stack, "before", 1.0)  # the credit fails before it is applied: 500
    view = await run(stack, "s-void", order("o-4", 200, pear=2))
    assert view["status"] == "compensated", view
    assert calls(view) == [
        ("create", "create", "created"),
        ("reserve", "reserve", "reserved"),
        ("charge", "debit", "applied"),
        ("pay", "credit", "injected_fault"),
        ("pay", "void_credit", "voided"),
        ("charge", "compensate_debit", "compensated"),
        ("reserve", "release", "released"),
        ("create", "cancel", "cancelled"),
    ]
    assert await state(stack, "o-4") == "cancelled"
    assert await balances(stack) == {"acc-01": OPENING, "acc-02": OPENING}
    held = (await stack.inventory.get("/reservations/s-void:reserve")).json()
    assert held["state"] == "released"
    await faults(stack, "before", 0.0)
    await assert_invariants(stack)


async def test_an_unknown_credit_already_applied_goes_forward(stack: Stack) -> None:
    await faults(stack, "after", 1.0)  # the credit is applied, then its answer is lost: 500
    view = await run(stack, "s-landed", order("o-5", 200, pear=2))
    assert view["status"] == "completed", view
    assert calls(view) == [
        ("create", "create", "created"),
        ("reserve", "reserve", "reserved"),
        ("charge", "debit", "applied"),
        ("pay", "credit", "injected_fault"),
        ("pay", "void_credit", "already_applied"),
        ("sell", "sell", "sold"),
        ("confirm", "confirm", "confirmed"),
    ]
    assert await state(stack, "o-5") == "confirmed"
    assert await balances(stack) == {"acc-01": OPENING - 200, "acc-02": OPENING + 200}
    assert (await stock(stack))["pear"]["sold"] == 2
    await faults(stack, "before", 0.0)
    await assert_invariants(stack)


async def test_the_account_services_own_audit_and_rules_relate_an_orders_charge_and_payment(
    stack: Stack,
) -> None:
    """Orders paid, refused and voided, then the account service's own audit: clean, every
    entry under its order's saga id; and its write-time rule binds an order's charge to its
    payment (no refund of a charge once the payment under the same id landed)."""
    await run(stack, "s-paid", order("o-10", 300, apple=1))
    await run(stack, "s-poor", order("o-11", OPENING + 1, apple=1))
    await faults(stack, "before", 1.0)
    await run(stack, "s-void", order("o-12", 200, pear=1))
    await faults(stack, "before", 0.0)
    await run(stack, "s-paid-2", order("o-13", 150, pear=1))
    assert {o: await state(stack, o) for o in ("o-10", "o-11", "o-12", "o-13")} == {
        "o-10": "confirmed",
        "o-11": "cancelled",
        "o-12": "cancelled",
        "o-13": "confirmed",
    }
    report = (await stack.accounts.get("/audit")).json()
    assert (report["ok"], report["violations"]) == (True, []), report
    assert report["total_balance"] == report["total_opened"]
    entries = (await stack.accounts.get("/accounts/acc-01/entries")).json()
    entries += (await stack.accounts.get("/accounts/acc-02/entries")).json()
    moved = sorted((e["transaction_id"], e["operation"], e["delta"]) for e in entries)
    assert moved == [
        ("s-paid", "credit", 300),
        ("s-paid", "debit", -300),
        ("s-paid-2", "credit", 150),
        ("s-paid-2", "debit", -150),
        ("s-void", "compensate_debit", 200),
        ("s-void", "debit", -200),
    ]
    await assert_invariants(stack)
    # Someone refunding a paid order's charge by hand: the account service relates it to the
    # payment under the same id and refuses it, as it would for a transfer.
    refund = await stack.accounts.post(
        "/compensate_debit",
        json={"account_id": "acc-01", "amount": 300},
        headers={"transaction-id": "s-paid"},
    )
    assert (refund.status_code, refund.json()["error"]) == (409, "transfer_credited")
    assert await balances(stack) == {"acc-01": OPENING - 450, "acc-02": OPENING + 450}
