"""Reads the order saga's books over HTTP, as `service_layer.order_audit.OrderBooks` takes them:
what each participant says about itself (its `GET /audit` and a few reads) for a set of orders.

`read_order_books(services, order_ids=…, sagas=…)` reads each order (`GET /orders/{id}`; an
order whose `create` never ran is not there and is skipped), its reservation
(`GET /reservations/<saga>:reserve`), the ledger entries of every customer and merchant of those
orders, the stock, and the three services' audits. Any other non-2xx answer raises
`httpx.HTTPStatusError`: a book that cannot be read is not a clean book.

Every listing is read whole. The only paged one is the account service's entries (at most
`ENTRY_LIMIT` per page, newest first): a full page is followed by the next, `before` its oldest
entry, until a page comes back short. (Each order and reservation is read by id, and the
inventory's `GET /stock` is not paged, so no other page limit applies; the orders service's
paged `GET /orders` is not used.) An account service that ignores `before` (a release before
it) would hand back the same page: `IncompleteBooks` is raised then, rather than an audit of
the newest entries only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from repository_after.service_layer.order_audit import OrderBooks, saga_of_order

ENTRY_LIMIT = 1000


class IncompleteBooks(Exception):
    """An account's entries cannot all be listed: its service does not page them."""


@dataclass(frozen=True)
class OrderServices:
    """Clients of the three services, each with its base URL and whatever credential it reads
    with."""

    accounts: httpx.AsyncClient
    inventory: httpx.AsyncClient
    orders: httpx.AsyncClient


async def _json(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    reply = await client.get(path, params=params or None)
    return reply.raise_for_status().json()


async def _optional(client: httpx.AsyncClient, path: str) -> Any | None:
    """The body of a 200, None for a 404."""
    reply = await client.get(path)
    if reply.status_code == 404:
        return None
    return reply.raise_for_status().json()


async def _entries(accounts: httpx.AsyncClient, account: str) -> list[Any]:
    """Every entry of `account`, page after page. Each page must hold only entries older than
    the last one's oldest: the cursor then falls on every page, so the reading ends."""
    path = f"/accounts/{account}/entries"
    listed: list[Any] = []
    page: list[Any] = await _json(accounts, path, limit=ENTRY_LIMIT)
    while True:
        listed += page
        if len(page) < ENTRY_LIMIT:
            return listed
        before = int(page[-1]["entry_id"])
        page = await _json(accounts, path, limit=ENTRY_LIMIT, before=before)
        if any(int(entry["entry_id"]) >= before for entry in page):
            raise IncompleteBooks(
                f"account {account!r} has more than {ENTRY_LIMIT} entries and its account"
                " service does not page them (`before`): an older release?"
            )


async def read_order_books(
    services: OrderServices, *, order_ids: Iterable[str], sagas: Mapping[str, str]
) -> OrderBooks:
    """The books of `order_ids`; `sagas` is saga id -> status (for the pending-order rule)."""
    orders = []
    for order_id in order_ids:
        order = await _optional(services.orders, f"/orders/{order_id}")
        if order is not None:
            orders.append(order)
    reservations = {}
    for order in orders:
        key = f"{saga_of_order(order)}:reserve"
        held = await _optional(services.inventory, f"/reservations/{key}")
        if held is not None:
            reservations[key] = held
    entries = []
    for account in sorted({o["customer"] for o in orders} | {o["merchant"] for o in orders}):
        entries += await _entries(services.accounts, account)
    return OrderBooks(
        account_audit=await _json(services.accounts, "/audit"),
        entries=entries,
        stock=(await _json(services.inventory, "/stock"))["stock"],
        inventory_audit=await _json(services.inventory, "/audit"),
        reservations=reservations,
        orders=orders,
        orders_audit=await _json(services.orders, "/audit"),
        sagas=dict(sagas),
    )
