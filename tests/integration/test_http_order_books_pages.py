"""`adapters.http_order_books` against the real services in process (the account service, the
inventory and the orders service on SQLite files, over `httpx.ASGITransport`): an account
with more entries than one page (`ENTRY_LIMIT`) is read whole, page after page (`before`).

One confirmed order, `o-1` (saga `s-1`), made by its six participant calls as the orchestrator
keys them; its charge is the customer's OLDEST entry, under `newer` later ones (transfers to a
third account, debit and credit, so every book stays clean). Reading only the newest page used
to miss that charge (1,000 newer entries: the audit then found the order confirmed but not
charged) or to refuse a listing that was whole (999: the full page ended on the order's entry).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from repository_after.adapters.http_order_books import ENTRY_LIMIT, OrderServices, read_order_books
from repository_after.domain.accounts import MAX_BATCH
from repository_after.service_layer.order_audit import audit_orders
from repository_after.services.inventory_http import create_inventory_app
from repository_after.services.orders_http import create_orders_app
from tests.conftest import accounts_settings, asgi_client

ORDER = {
    "order_id": "o-1",
    "customer": "cust-01",
    "merchant": "shop-01",
    "lines": [{"sku": "apple", "qty": 1}],
    "total": 300,
}


@asynccontextmanager
async def served(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            yield client


@asynccontextmanager
async def account_service(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in asgi_client(accounts_settings(tmp_path)):
        yield client


@pytest.fixture
async def services(tmp_path: Path) -> AsyncIterator[OrderServices]:
    async with AsyncExitStack() as stack:
        enter = stack.enter_async_context
        yield OrderServices(
            accounts=await enter(account_service(tmp_path)),
            inventory=await enter(served(create_inventory_app(tmp_path / "inventory.db"))),
            orders=await enter(served(create_orders_app(tmp_path / "orders.db"))),
        )


async def ok(client: httpx.AsyncClient, path: str, body: Any, key: str | None = None) -> Any:
    headers = {} if key is None else {"transaction-id": key}
    reply = await client.post(path, json=body, headers=headers)
    assert reply.status_code in (200, 201), reply.text
    return reply.json()


async def confirmed_order(s: OrderServices) -> None:
    """o-1 through create, reserve, charge, pay, sell, confirm, keyed as the order saga keys."""
    await ok(s.inventory, "/stock", {"sku": "apple", "qty": 5})
    await ok(s.orders, "/create", ORDER, "s-1:create")
    reserved = await ok(s.inventory, "/reserve", {"lines": ORDER["lines"]}, "s-1:reserve")
    await ok(s.accounts, "/debit", {"account_id": "cust-01", "amount": 300}, "s-1")
    await ok(s.accounts, "/credit", {"account_id": "shop-01", "amount": 300}, "s-1")
    sold = {"reservation_id": reserved["reservation_id"]}
    await ok(s.inventory, "/sell", sold, "s-1:sell")
    await ok(s.orders, "/confirm", {"order_id": "o-1"}, "s-1:confirm")


async def transfers_out_of_the_customer(accounts: httpx.AsyncClient, n: int) -> None:
    """`n` transfers of 1 from cust-01 to other-01 (a debit entry each on cust-01), batched."""
    items = [
        {"operation": operation, "transaction_id": f"t-{i}", "account_id": account, "amount": 1}
        for i in range(n)
        for operation, account in (("debit", "cust-01"), ("credit", "other-01"))
    ]
    for start in range(0, len(items), MAX_BATCH):
        done = await ok(accounts, "/batch", {"operations": items[start : start + MAX_BATCH]})
        assert {r["status_code"] for r in done["results"]} == {200}


@pytest.mark.parametrize("newer", [ENTRY_LIMIT - 1, ENTRY_LIMIT, 2 * ENTRY_LIMIT + 500])
async def test_every_page_of_an_account_s_entries_is_read(
    services: OrderServices, newer: int
) -> None:
    for account, opening in (("cust-01", 300 + newer), ("shop-01", 0), ("other-01", 0)):
        await ok(
            services.accounts, "/accounts", {"account_id": account, "initial_balance": opening}
        )
    await confirmed_order(services)
    await transfers_out_of_the_customer(services.accounts, newer)

    books = await read_order_books(services, order_ids=["o-1"], sagas={"s-1": "completed"})

    assert audit_orders(books) == []
    # cust-01's debits (s-1's charge and every transfer's), each once, and shop-01's payment
    debits = [e for e in books.entries if e["operation"] == "debit"]
    assert len(debits) == len({e["entry_id"] for e in debits}) == newer + 1
    assert debits[-1]["transaction_id"] == "s-1"  # the oldest, on the last page
    credits = [(e["transaction_id"], e["delta"]) for e in books.entries if e not in debits]
    assert credits == [("s-1", 300)]
