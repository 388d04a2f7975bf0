"""The order bench's books: the stock opened before a run, and the audit read after it.

Both systems of the order bench (`orders`: sagabank; `cqrs_order`: python-cqrs) run against one
`sagabank serve` process hosting the account service with the inventory and the orders services
under `/inventory` and `/orders`. Before the load, `open_stock` opens every SKU of the plan with
`plan.STOCK` (the inventory's `POST /stock`: open, as the bench sets no service token). After it,
`audit` reads what the three services say about the planned orders
(`adapters.http_order_books.read_order_books`: their `GET /audit` and reads) and checks the order
saga's invariants over it (`service_layer.order_audit.audit_orders`): money and stock conserved,
every confirmed order sold, charged and paid, every cancelled one released and refunded, none
left pending (every saga of a run has ended when it is audited), and each service's own audit
clean, the account service's included. Every call is keyed as the order saga's definition keys
it (`step_key`), python-cqrs's steps included, so the audit finds each order's reservation,
charge and payment on either side.
"""

from __future__ import annotations

from collections.abc import Iterable

import httpx
from rich.console import Console

from repository_after.adapters.http_order_books import (
    IncompleteBooks,
    OrderServices,
    read_order_books,
)
from repository_after.domain.order import ORDER
from repository_after.domain.saga import StepRole
from repository_after.service_layer.order_audit import audit_orders
from sagabank_tools.bench.plan import PRICES, STOCK

console = Console()
#: How an order saga may end in the bench (no refusal is planned: see `plan`)
OUTCOMES = ("completed", "compensated")


def step_key(saga_id: str, step: str) -> str:
    """The idempotency key of `step`'s calls in the order saga `saga_id` (every role of a step
    shares it), as sagabank's orchestrator sends it."""
    return ORDER.key(saga_id, ORDER.call(ORDER.index(step), StepRole.ACTION))


async def open_stock(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        for sku in PRICES:
            opened = await client.post("/inventory/stock", json={"sku": sku, "qty": STOCK})
            opened.raise_for_status()


async def audit(url: str, order_ids: Iterable[str]) -> list[str]:
    """Every broken invariant of the books of `order_ids` served at `url`, one line each ([]:
    clean)."""

    def client(path: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=url + path, timeout=60)

    async with (
        client("") as accounts,
        client("/inventory") as inventory,
        client("/orders") as orders,
    ):
        services = OrderServices(accounts=accounts, inventory=inventory, orders=orders)
        try:
            books = await read_order_books(services, order_ids=order_ids, sagas={})
        except IncompleteBooks as e:
            return [f"bench: the books cannot be read whole: {e}"]
    return audit_orders(books)


def with_audit(figures: dict[str, float], violations: list[str]) -> dict[str, float]:
    """`figures` and `audit_violations`, each violation printed."""
    for violation in violations[:20]:
        console.print(f"[red]order books: {violation}")
    return {**figures, "audit_violations": float(len(violations))}
