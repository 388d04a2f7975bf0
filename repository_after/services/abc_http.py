"""The HTTP edge of the A → B → C participants (`services/abc.py`), each a service of its own.

- `abc_routes`: the kit's operations (`do`, `undo`, `/batch`, `/health`) and `PUT /switch`
  (`{"fault": "refuse" | "unknown_before" | "unknown_after" | "slow_before" | "slow_after" |
  null, "times": n | null}`: the fault of the next n action calls, or of every one) and
  `POST /release` (lets the calls a `slow` fault holds go, `SwitchedService.release_held`;
  answers `{"released": n}` once each was answered), all guarded by the service token when one
  is set (`/health` excepted);
- `abc_reads`: `GET /entries` (the service's table), `GET /calls` (its answers, as its journal
  noted them) and the kit's `GET /faults`, behind the read guard of the host.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictInt, ValidationError

from repository_after.participant_kit import bearer_guard
from repository_after.participant_kit.http import invalid_request, validation_details
from repository_after.services.abc import entries
from repository_after.services.hosting import (
    LOOPBACK_HOSTS,
    json_answer,
    participant_reads_router,
    participant_routes,
    secret,
    standalone,
)
from repository_after.services.switched import Fault, Switch, SwitchedService


class SwitchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fault: Fault | None
    times: Annotated[StrictInt, Field(ge=1, le=1_000)] | None = None


def abc_routes(service: SwitchedService, token: SecretStr | None) -> APIRouter:
    router = participant_routes(service, token)
    guard = bearer_guard(token)

    @router.put("/switch", response_class=Response)
    async def put_switch(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        try:
            body = SwitchIn.model_validate_json(await request.body())
        except ValidationError as exc:
            return invalid_request(validation_details(exc))
        service.switch = Switch(body.fault, body.times)
        return json_answer(200, {"fault": body.fault, "times": body.times})

    @router.post("/release", response_class=Response)
    async def post_release(request: Request) -> Response:
        if (refused := guard(request)) is not None:
            return refused
        return json_answer(200, {"released": await service.release_held()})

    return router


def abc_reads(service: SwitchedService) -> APIRouter:
    """The service's reads; the host puts the whole router behind its read guard."""
    router = participant_reads_router(service)

    @router.get("/entries", response_class=Response)
    async def get_entries() -> Response:
        return json_answer(200, {"entries": await service.store.read(entries)})

    @router.get("/calls", response_class=Response)
    async def get_calls() -> Response:
        mine = [c for c in service.journal.calls if c.service == service.name]
        calls = [{"seq": c.seq, "key": c.key, "call": str(c)} for c in mine]
        return json_answer(200, {"calls": calls})

    return router


def create_abc_app(
    service: SwitchedService,
    token: str | None = None,
    *,
    read_token: str | None = None,
    trusted_hosts: Iterable[str] = LOOPBACK_HOSTS,
) -> FastAPI:
    """`service` as a service of its own (`hosting.standalone`: the product's request limits
    and error shapes; its store closed with the app's lifespan)."""
    return standalone(
        f"sagabank abc {service.name}",
        abc_routes(service, secret(token)),
        abc_reads(service),
        service.store,
        read_token=secret(read_token),
        trusted_hosts=trusted_hosts,
    )
