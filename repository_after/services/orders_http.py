"""The orders service's HTTP edge (its operations and rules: `services.orders`).

Two routers, as the inventory's (`services.inventory_http`):
- `orders_routes`: the kit's operations (`create`, `cancel`, `confirm`, `/batch`, `/health`),
  guarded by the service token when one is set (`/health` excepted: it is open).
- `orders_reads`: `GET /orders/{id}` (with `created_key`: the key `create` ran under,
  `<saga id>:create` from the orchestrator), `GET /orders` (bounded: `limit` ≤ 1000, `after` an
  order id), `GET /audit` and the kit's `GET /faults`. No guard of its own: its host includes
  it behind its read guard (`sagabank serve`: `entrypoints.deps.Reader`; `create_orders_app`:
  `read_token`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Response
from pydantic import SecretStr

from repository_after.participant_kit import ParticipantService
from repository_after.participant_kit.http import EdgeHooks
from repository_after.services.hosting import (
    LOOPBACK_HOSTS,
    AfterCursor,
    IdPath,
    add_audit_route,
    found_or_404,
    json_answer,
    participant_reads_router,
    participant_routes,
    secret,
    standalone,
)
from repository_after.services.orders import MAX_LIST, audit, find_order, list_orders, open_orders


def orders_routes(
    service: ParticipantService, token: SecretStr | None, hooks: EdgeHooks | None = None
) -> APIRouter:
    """The orders' operations over `service`, without request limits or a lifespan (what a
    `sagabank serve` process includes under `/orders`); `create_orders_app` is the standalone
    service."""
    return participant_routes(service, token, hooks)


def orders_reads(service: ParticipantService) -> APIRouter:
    """The orders' reads; the host puts the whole router behind its read guard."""
    router = participant_reads_router(service)

    @router.get("/orders", response_class=Response)
    async def get_orders(
        limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 100,
        after: AfterCursor = None,
    ) -> Response:
        found = await service.store.read(lambda tx: list_orders(tx, limit=limit, after=after))
        return json_answer(200, {"orders": found})

    @router.get("/orders/{order_id}", response_class=Response)
    async def get_order(
        order_id: IdPath,
    ) -> Response:
        found = await service.store.read(lambda tx: find_order(tx, order_id))
        return found_or_404(found, error="order_not_found", message="no such order")

    add_audit_route(router, service, audit)
    return router


def create_orders_app(
    database_path: Path | str,
    token: str | None = None,
    *,
    read_token: str | None = None,
    trusted_hosts: Iterable[str] = LOOPBACK_HOSTS,
) -> FastAPI:
    """The orders service over `database_path` (a SQLite file, or a PostgreSQL URL); `token`
    guards its operations, `read_token` its reads (unset: open). The product's request limits
    come first (as the inventory's). The store opens now and closes with the app's lifespan."""
    service = open_orders(database_path)
    return standalone(
        "sagabank orders",
        orders_routes(service, secret(token)),
        orders_reads(service),
        service.store,
        read_token=secret(read_token),
        trusted_hosts=trusted_hosts,
    )
