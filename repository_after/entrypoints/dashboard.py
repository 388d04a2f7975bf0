"""The operator dashboard at `/ui`: static page + JSON helpers + a server-sent event stream.

- `/ui`, `/ui/sagas/{type}/{id}` (and `/ui/transfers/{id}`, a transfer's older address): the
  single page (plain HTML/JS/CSS shipped in `static/`, nothing fetched from elsewhere, so it works
  offline); it reads the JSON API (`/sagas`, `/sagas/{type}`, `/sagas/{type}/{id}`,
  `POST /sagas/{type}/{id}/retry|resolve`, `POST /transfers` for its form). It shows every saga
  type: each row as its type reads (a transfer's route and amount, an order's customer, merchant,
  total and lines, any other type's parameters), and a saga's timeline from the steps of its
  definition's version (`/ui/api/saga-types`).
- `/ui/events`: saga transitions as they happen (`TransitionHub`). A stream ends by itself after
  `STREAM_SECONDS` and the browser reconnects (`retry:`): uvicorn's graceful shutdown waits for
  open responses, so an endless stream would hold a shutdown hostage. Each client (peer address)
  may hold at most `STREAMS_PER_CLIENT` streams (429 beyond), so one client cannot take every
  one of the hub's slots and lock everyone else out; the hub's own cap still bounds the total.
  (Behind a reverse proxy every client has the proxy's address: size the proxy's limits.)
- `/ui/api/books`: balances, total money and the audit, fetched from the account service
  (this very process in role `all`, `SAGABANK_ACCOUNTS_URL` in role `orchestrator`). In role
  `all` that audit is reconciled with the saga log (`service_layer.reconcile`: its orphans and
  the money running sagas own); from a separate account service it says `reconciled: false`.
- `/ui/api/transfers/{id}/logs`: the recent log lines of one transaction (bounded buffer).
With a token configured every route but the page and its assets needs it (`deps.Reader`); the
page sends the one the operator typed, `/ui/events` as `?token=` (EventSource sends no headers).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Header, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse

from repository_after.domain.ids import TRANSACTION_ID_PATTERN
from repository_after.entrypoints.deps import (
    EventStreamsDep,
    Reader,
    SagaDeskDep,
    SettingsDep,
    StreamReader,
    TelemetryDep,
)
from repository_after.entrypoints.errors import BadRequest, error_response
from repository_after.observability.events import TooManySubscribers

router = APIRouter(prefix="/ui", tags=["dashboard"])

STATIC = Path(__file__).parent / "static"
_ASSETS = {
    "dashboard.js": "text/javascript",
    "saga_list.js": "text/javascript",
    "saga_detail.js": "text/javascript",
    "dashboard_app.js": "text/javascript",
    "dashboard.css": "text/css",
    "favicon.svg": "image/svg+xml",
}
STREAM_SECONDS = 20.0
KEEPALIVE_SECONDS = 5.0
STREAMS_PER_CLIENT = 4


def _page() -> FileResponse:
    return FileResponse(STATIC / "dashboard.html", media_type="text/html")


@router.get("", include_in_schema=False)
async def dashboard() -> FileResponse:
    return _page()


@router.get("/transfers/{transaction_id}", include_in_schema=False)
async def transfer_page(transaction_id: str) -> FileResponse:  # noqa: ARG001 - routed client-side
    return _page()


@router.get("/sagas/{saga_type}/{saga_id}", include_in_schema=False)
async def saga_page(saga_type: str, saga_id: str) -> FileResponse:  # noqa: ARG001 - client-side
    return _page()


@router.get("/static/{name}", include_in_schema=False)
async def asset(name: str) -> FileResponse:
    media_type = _ASSETS.get(name)
    if media_type is None:
        raise BadRequest("not_found", "no such asset", 404)
    return FileResponse(STATIC / name, media_type=media_type)


@router.get("/events", dependencies=[StreamReader])
async def events(
    request: Request, telemetry: TelemetryDep, streams: EventStreamsDep
) -> StreamingResponse:
    """Server-sent events: `transition` messages, or `resync` when this client fell behind."""
    hub = telemetry.hub
    peer = request.client.host if request.client else "unknown"
    if streams[peer] >= STREAMS_PER_CLIENT:
        raise BadRequest(
            "too_many_streams", f"at most {STREAMS_PER_CLIENT} live streams per client", 429
        )
    try:
        queue = hub.subscribe()
    except TooManySubscribers as exc:
        raise BadRequest("too_many_subscribers", str(exc), 503) from exc
    streams[peer] += 1

    async def stream() -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STREAM_SECONDS
        try:
            yield "retry: 1000\n\n"
            while (left := deadline - loop.time()) > 0:
                try:
                    message = await asyncio.wait_for(
                        queue.get(), timeout=min(KEEPALIVE_SECONDS, left)
                    )
                except TimeoutError:
                    yield ": keep-alive\n\n"
                    continue
                yield f"event: {message['type']}\ndata: {json.dumps(message)}\n\n"
        finally:
            hub.unsubscribe(queue)
            streams[peer] -= 1
            if streams[peer] <= 0:
                del streams[peer]  # the table holds only clients with open streams

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/api/books", dependencies=[Reader])
async def books(
    settings: SettingsDep, authorization: Annotated[str | None, Header()] = None
) -> JSONResponse:
    """Accounts, total money and the audit, as the account service reports them."""
    url = settings.resolved_accounts_url()
    try:
        # The caller's token goes on: the account service guards its own reads.
        headers = {"Authorization": authorization} if authorization else {}
        async with httpx.AsyncClient(base_url=url, timeout=2.0, headers=headers) as client:
            accounts = (await client.get("/accounts")).raise_for_status().json()
            audit = (await client.get("/audit")).raise_for_status().json()
    except (httpx.HTTPError, ValueError):
        return error_response(
            503, "accounts_unavailable", f"the account service at {url} did not answer"
        )
    body: dict[str, Any] = {**accounts, "audit": audit}
    return JSONResponse(body)


@router.get("/api/saga-types", dependencies=[Reader])
async def saga_types(desk: SagaDeskDep) -> dict[str, Any]:
    """The saga types this server runs, each a picture of its definition's steps."""
    return {"saga_types": desk.types.describe()}


@router.get("/api/transfers/{transaction_id}/logs", dependencies=[Reader])
async def transfer_logs(
    telemetry: TelemetryDep,
    transaction_id: Annotated[
        str, PathParam(pattern=TRANSACTION_ID_PATTERN.pattern, max_length=128)
    ],
) -> dict[str, Any]:
    return {
        "transaction_id": transaction_id,
        "lines": telemetry.recent_logs.lines(transaction_id),
    }
