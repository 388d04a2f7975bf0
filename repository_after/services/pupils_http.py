"""The pupils service's HTTP edge (its operations and rules: `services.pupils`).

Two routers, as the inventory's (`services.inventory_http`):
- `pupils_routes`: the kit's operations (`assign`, `unassign`, `/batch`, `/health`) and
  `POST /pupils` (register pupils, in no class), guarded by the service token when one is set
  (`/health` excepted: it is open).
- `pupils_reads`: `GET /pupils` (a page by id: `limit` ≤ 1000, `after` a pupil id),
  `GET /pupils/{id}` (its class and the key `assign` ran under), `GET /audit` and the kit's
  `GET /faults`. No guard of its own: its host includes it behind its read guard (`sagabank
  serve`: `entrypoints.deps.Reader`; `create_pupils_app`: `read_token`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request, Response
from pydantic import SecretStr, ValidationError

from repository_after.participant_kit import ParticipantService, bearer_guard
from repository_after.participant_kit.http import EdgeHooks, invalid_request, validation_details
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
from repository_after.services.pupils import (
    MAX_LIST,
    RegisterIn,
    audit,
    find_pupil,
    list_pupils,
    open_pupils,
    register,
)


def pupils_routes(
    service: ParticipantService, token: SecretStr | None, hooks: EdgeHooks | None = None
) -> APIRouter:
    """The pupils' operations and `POST /pupils` over `service`, without request limits or a
    lifespan (what a `sagabank serve` process includes under `/pupils`); `create_pupils_app`
    is the standalone service."""
    router = participant_routes(service, token, hooks)
    guard = bearer_guard(token)

    @router.post("/pupils", response_class=Response)
    async def post_pupils(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        try:
            body = RegisterIn.model_validate_json(await request.body())
        except ValidationError as exc:
            return invalid_request(validation_details(exc))
        done = await service.store.transaction(lambda tx: register(tx, body.pupils))
        return json_answer(200, done)

    return router


def pupils_reads(service: ParticipantService) -> APIRouter:
    """The pupils' reads; the host puts the whole router behind its read guard."""
    router = participant_reads_router(service)

    @router.get("/pupils", response_class=Response)
    async def get_pupils(
        limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 100,
        after: AfterCursor = None,
    ) -> Response:
        found = await service.store.read(lambda tx: list_pupils(tx, limit=limit, after=after))
        return json_answer(200, {"pupils": found})

    @router.get("/pupils/{pupil_id}", response_class=Response)
    async def get_pupil(pupil_id: IdPath) -> Response:
        found = await service.store.read(lambda tx: find_pupil(tx, pupil_id))
        return found_or_404(found, error="pupil_not_found", message="no such pupil")

    add_audit_route(router, service, audit)
    return router


def create_pupils_app(
    database_path: Path | str,
    token: str | None = None,
    *,
    read_token: str | None = None,
    trusted_hosts: Iterable[str] = LOOPBACK_HOSTS,
) -> FastAPI:
    """The pupils service over `database_path` (a SQLite file, or a PostgreSQL URL); `token`
    guards its operations and `POST /pupils`, `read_token` its reads (unset: open). The
    product's request limits come first (as the inventory's). The store opens now and closes
    with the app's lifespan."""
    service = open_pupils(database_path)
    return standalone(
        "sagabank pupils",
        pupils_routes(service, secret(token)),
        pupils_reads(service),
        service.store,
        read_token=secret(read_token),
        trusted_hosts=trusted_hosts,
    )
