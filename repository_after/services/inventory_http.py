"""The inventory service's HTTP edge (its operations and rules: `services.inventory`).

Two routers, so that no read can be added outside the read guard by forgetting it:
- `inventory_routes`: the kit's operations (`reserve`, `release`, `sell`, `/batch`, `/health`)
  and `POST /stock` (open or top up an SKU), all guarded by the service token when one is set
  (`/health` excepted: it is open).
- `inventory_reads`: `GET /stock`, `GET /reservations/{id}` (its state and lines), `GET /audit`,
  and the kit's `GET /faults` (`hosting.participant_reads_router`).
  It carries no guard of its own: its host includes it behind its read guard (`sagabank serve`:
  `entrypoints.deps.Reader`, the read or admin token; `create_inventory_app`: `read_token`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi import Path as PathParam
from pydantic import SecretStr, ValidationError

from repository_after.domain.ids import TRANSACTION_ID_PATTERN
from repository_after.participant_kit import ParticipantService, bearer_guard
from repository_after.participant_kit.http import EdgeHooks, invalid_request, validation_details
from repository_after.services.hosting import (
    LOOPBACK_HOSTS,
    add_audit_route,
    found_or_404,
    json_answer,
    participant_reads_router,
    participant_routes,
    secret,
    standalone,
)
from repository_after.services.inventory import (
    StockIn,
    audit,
    list_stock,
    open_inventory,
    open_stock,
    reservation,
)


def inventory_routes(
    service: ParticipantService, token: SecretStr | None, hooks: EdgeHooks | None = None
) -> APIRouter:
    """The inventory's operations and `POST /stock` over `service`, without request limits or
    a lifespan: what a `sagabank serve` process includes under `/inventory` (its own limits and
    lifespan apply). `create_inventory_app` is the standalone service."""
    router = participant_routes(service, token, hooks)
    guard = bearer_guard(token)

    @router.post("/stock", response_class=Response)
    async def post_stock(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        try:
            body = StockIn.model_validate_json(await request.body())
        except ValidationError as exc:
            return invalid_request(validation_details(exc))
        row = await service.store.transaction(lambda tx: open_stock(tx, body.sku, body.qty))
        return json_answer(200, row)

    return router


def inventory_reads(service: ParticipantService) -> APIRouter:
    """The inventory's reads; the host puts the whole router behind its read guard."""
    router = participant_reads_router(service)

    @router.get("/stock", response_class=Response)
    async def get_stock() -> Response:
        return json_answer(200, {"stock": await service.store.read(list_stock)})

    @router.get("/reservations/{reservation_id}", response_class=Response)
    async def get_reservation(
        reservation_id: Annotated[str, PathParam(pattern=TRANSACTION_ID_PATTERN.pattern)],
    ) -> Response:
        # Checked before any query (a reservation's id is its key): a NUL byte would reach
        # PostgreSQL and fail there (503).
        found = await service.store.read(lambda tx: reservation(tx, reservation_id))
        return found_or_404(found, error="reservation_not_found", message="no such one")

    add_audit_route(router, service, audit)
    return router


def create_inventory_app(
    database_path: Path | str,
    token: str | None = None,
    *,
    read_token: str | None = None,
    trusted_hosts: Iterable[str] = LOOPBACK_HOSTS,
) -> FastAPI:
    """The inventory service over `database_path` (a SQLite file, or a PostgreSQL URL); `token`
    guards its operations and `POST /stock`, `read_token` its reads (`Authorization: Bearer
    <token>`; unset: open). The product's request limits come first
    (`entrypoints.limits.RequestLimits`: header and body sizes, one `transaction-id`, `Host`
    among `trusted_hosts` against DNS rebinding, no cross-site writes). The store opens now and
    closes with the app's lifespan."""
    service = open_inventory(database_path)
    return standalone(
        "sagabank inventory",
        inventory_routes(service, secret(token)),
        inventory_reads(service),
        service.store,
        read_token=secret(read_token),
        trusted_hosts=trusted_hosts,
    )
