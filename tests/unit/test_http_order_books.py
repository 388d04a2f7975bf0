"""`adapters.http_order_books` over fake services (`httpx.MockTransport`): the books of the orders
asked for, an order never created skipped, an account service that does not page its entries
refused rather than audited on its newest page, and an unreadable book raised. (Every page read,
against the real services: tests/integration/test_http_order_books_pages.py.)"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from repository_after.adapters.http_order_books import (
    ENTRY_LIMIT,
    IncompleteBooks,
    OrderServices,
    read_order_books,
)

ORDER = {
    "order_id": "o-1",
    "created_key": "s-1:create",
    "customer": "cust-01",
    "merchant": "shop-01",
    "total": 100,
    "state": "confirmed",
    "lines": [{"sku": "apple", "qty": 1}],
}
AUDIT = {"ok": True, "violations": [], "total_opened": 1, "total_balance": 1}


def entry(n: int, transaction_id: str) -> dict[str, Any]:
    return {"entry_id": n, "transaction_id": transaction_id, "operation": "debit", "delta": -1}


#: requests a fake service answers; then 500, so a reader that would loop fails fast instead
MAX_REQUESTS = 100


def service(routes: dict[str, Any]) -> httpx.AsyncClient:
    requests = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal requests
        requests += 1
        if requests > MAX_REQUESTS:
            return httpx.Response(500, json={"error": "the reader loops"})
        found = routes.get(request.url.path)
        if found is None:
            return httpx.Response(404, json={"error": "not_found"})
        if isinstance(found, int):
            return httpx.Response(found, json={"error": "boom"})
        return httpx.Response(200, json=found)

    return httpx.AsyncClient(transport=httpx.MockTransport(answer), base_url="http://svc")


def services(entries: Callable[[str], list[dict[str, Any]]], audit: Any = AUDIT) -> OrderServices:
    return OrderServices(
        accounts=service(
            {
                "/audit": audit,
                "/accounts/cust-01/entries": entries("cust-01"),
                "/accounts/shop-01/entries": entries("shop-01"),
            }
        ),
        inventory=service(
            {
                "/stock": {"stock": []},
                "/audit": AUDIT,
                "/reservations/s-1:reserve": {"reservation_id": "s-1:reserve", "state": "sold"},
            }
        ),
        orders=service({"/orders/o-1": ORDER, "/audit": AUDIT}),
    )


async def test_the_books_of_the_orders_asked_for_and_none_of_an_order_never_created() -> None:
    books = await read_order_books(
        services(lambda account: [entry(1, "s-1:charge")]),
        order_ids=["o-1", "o-never"],
        sagas={"s-1": "completed"},
    )
    assert [o["order_id"] for o in books.orders] == ["o-1"]
    assert books.reservations == {"s-1:reserve": {"reservation_id": "s-1:reserve", "state": "sold"}}
    assert len(books.entries) == 2  # the customer's and the merchant's listings
    assert books.sagas == {"s-1": "completed"}


async def test_an_account_service_that_does_not_page_its_entries_is_refused() -> None:
    """It ignores `before` (a release without it) and answers the newest page again."""

    def full(account: str) -> list[dict[str, Any]]:
        return [entry(n, "s-0:pay") for n in range(ENTRY_LIMIT, 0, -1)]

    with pytest.raises(IncompleteBooks, match=r"cust-01.*does not page them"):
        await read_order_books(services(full), order_ids=["o-1"], sagas={})


async def test_an_unreadable_book_is_raised() -> None:
    with pytest.raises(httpx.HTTPStatusError):
        await read_order_books(services(lambda account: [], audit=503), order_ids=["o-1"], sagas={})
