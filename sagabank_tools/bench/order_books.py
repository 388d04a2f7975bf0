"""The order bench's books: the stock opened before a run, and the audit read after it.

Both systems of the order bench (`orders`: sagabank; `cqrs_order`: python-cqrs) run against one
`sagabank serve` process hosting the account service with the inventory and the orders services
under `/inventory` and `/orders`. Before the load, `open_stock` opens every SKU of the plan with
`plan.STOCK` (the inventory's `POST /stock`: open, as the bench sets no service token). After it,
`audit` reads what the three services say about themselves (their `GET /audit` and reads) and
checks the order saga's invariants over it (`service_layer.order_audit.audit_orders`): money and
stock conserved, every confirmed order sold, charged and paid, every cancelled one released and
refunded, none left pending, and any finding of a service's own audit.

The account service's book audit pairs a debit with its credit by one transaction id, so under
the order saga's per-step keys it reports every paid order as `money_created: <saga>:pay ...`;
`audit_orders` accepts exactly that finding for an order whose charge debited what its payment
credited (docs/sagas.md, "Per-step keys and the account service"), so the books read clean
despite it. Every call is keyed as the order saga's definition keys it (`step_key`), python-cqrs's
steps included, so the audit finds each order's reservation, charge and payment on either side.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from rich.console import Console

from repository_after.domain.order import ORDER
from repository_after.domain.saga import StepRole
from repository_after.service_layer.order_audit import OrderBooks, audit_orders, saga_of_order
from sagabank_tools.bench.plan import ACCOUNTS, PRICES, STOCK

console = Console()
#: How an order saga may end in the bench (no refusal is planned: see `plan`)
OUTCOMES = ("completed", "compensated")

#: The most entries `GET /accounts/{id}/entries` answers: the audit cannot read past it.
MAX_ENTRIES = 1000
#: A saga's status by its id (None: unknown), for an order the audit finds still pending.
SagaStatus = Callable[[httpx.AsyncClient, str], Awaitable[str | None]]


def step_key(saga_id: str, step: str) -> str:
    """The idempotency key of `step`'s calls in the order saga `saga_id` (every role of a step
    shares it), as sagabank's orchestrator sends it."""
    return ORDER.key(saga_id, ORDER.call(ORDER.index(step), StepRole.ACTION))


async def open_stock(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for sku in PRICES:
            opened = await client.post("/inventory/stock", json={"sku": sku, "qty": STOCK})
            opened.raise_for_status()


async def _json(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    answer = await client.get(path, params=params)
    answer.raise_for_status()
    return answer.json()


async def _orders(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    orders: list[dict[str, Any]] = []
    while page := (await _json(client, "/orders/orders", limit=1000, **_after(orders)))["orders"]:
        orders += page
    return orders


def _after(orders: list[dict[str, Any]]) -> dict[str, str]:
    return {"after": orders[-1]["order_id"]} if orders else {}


async def _reservations(
    client: httpx.AsyncClient, orders: list[dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    keys = [step_key(saga_of_order(order), "reserve") for order in orders]
    found = await asyncio.gather(*(client.get(f"/inventory/reservations/{key}") for key in keys))
    return {key: r.json() for key, r in zip(keys, found, strict=True) if r.status_code == 200}


def _orphaned(order: dict[str, Any]) -> str:
    """What the account service's audit reconciled with a saga log (`--role all`) reports for a
    confirmed order under per-step keys: its charge in flight, and no saga of that id."""
    charge = step_key(saga_of_order(order), "charge")
    return f"accounts: orphaned: {charge} holds {order['total']} in flight and no saga owns it"


@dataclass(frozen=True)
class Audit:
    """`violations`: every broken invariant, one line each (none: the books are clean);
    `false_alarms`: the findings of the account service's own audit that are its known misreading
    of a paid order under per-step keys (docs/sagas.md, "Per-step keys and the account
    service"): `money_created: <saga>:pay ...`, which `audit_orders` accepts, and, where the audit
    is reconciled with the saga log, `orphaned: <saga>:charge ...` for a confirmed order."""

    violations: list[str]
    false_alarms: int


async def audit(url: str, saga_status: SagaStatus | None = None) -> Audit:
    """The order books served at `url`, checked. `saga_status` reads the status of the saga of
    an order still pending (None: no saga can be asked, so a pending order is a violation)."""
    limits = httpx.Limits(max_connections=16)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        orders = await _orders(client)
        sagas: dict[str, str] = {}
        for order in orders:
            if order["state"] == "pending" and saga_status is not None:
                saga = saga_of_order(order)
                if (status := await saga_status(client, saga)) is not None:
                    sagas[saga] = status
        entries: list[dict[str, Any]] = []
        unread = []
        for account in ACCOUNTS:
            read = await _json(client, f"/accounts/{account}/entries", limit=MAX_ENTRIES)
            entries += read
            if len(read) == MAX_ENTRIES:
                unread.append(f"bench: {account} has more entries than the audit reads")
        books = OrderBooks(
            account_audit=await _json(client, "/audit"),
            entries=entries,
            stock=(await _json(client, "/inventory/stock"))["stock"],
            inventory_audit=await _json(client, "/inventory/audit"),
            reservations=await _reservations(client, orders),
            orders=orders,
            orders_audit=await _json(client, "/orders/audit"),
            sagas=sagas,
        )
    orphaned = {_orphaned(order) for order in orders if order["state"] == "confirmed"}
    violations = [v for v in unread + audit_orders(books) if v not in orphaned]
    unexplained = sum(v.startswith("accounts: ") for v in violations)
    return Audit(violations, len(books.account_audit["violations"]) - unexplained)


def with_audit(figures: dict[str, float], books: Audit) -> dict[str, float]:
    """`figures` and the audit's: `audit_violations` (each printed) and `audit_false_alarms`."""
    for violation in books.violations[:20]:
        console.print(f"[red]order books: {violation}")
    audited = {
        "audit_violations": float(len(books.violations)),
        "audit_false_alarms": float(books.false_alarms),
    }
    return {**figures, **audited}
