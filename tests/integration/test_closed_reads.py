"""Closed reads (`deps.Reader`): with `SAGABANK_ADMIN_TOKEN` set, every read needs a token too
(the admin token, or the read-only `SAGABANK_READ_TOKEN`); `/health` and the dashboard's page
and assets stay open; `/ui/events` also takes the token as `?token=` (EventSource sends no
headers); the read token opens no write. Without any token every read stays open. The app in
role `all` on SQLite files, through ASGITransport.

Every GET route of every role, found by walking the app's routes (so a read added later is
checked without being listed here), is either open by name (`OPEN_GETS`) or refuses a caller
without a token, with a wrong one or with the service token, and opens to the read and the
admin token: the hosted participants' reads (`/inventory/...`, `/orders/...`, `/pupils/...`,
`/classes/...`) and those of a participant in a process of its own included. A standalone
participant app (`create_inventory_app`, `create_orders_app`, `create_pupils_app`,
`create_classes_app`) guards its reads with its `read_token`."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from repository_after.config import ProcessRole
from repository_after.entrypoints import dashboard
from repository_after.services.classes_http import create_classes_app
from repository_after.services.inventory_http import create_inventory_app
from repository_after.services.orders_http import create_orders_app
from repository_after.services.pupils_http import create_pupils_app
from tests.conftest import Launcher, accounts_settings, asgi_client

ADMIN, READ, SERVICE = "adm1n", "r3ad", "s3rvice"
READS = [
    "/accounts",
    "/accounts/acc-01",
    "/accounts/acc-01/entries",
    "/audit",
    "/transfers",
    "/transfers/none-such",
    "/sagas",
    "/sagas/transfer",
    "/sagas/transfer/none-such",
    "/metrics",
    "/admin/faults",
    "/ui/api/transfers/x/logs",
    "/ui/api/books",
    "/ui/api/saga-types",
    "/ui/events",
]
OPEN = [
    "/health",
    "/ui",
    "/ui/transfers/x",
    "/ui/sagas/order/x",
    "/ui/static/dashboard.js",
    "/ui/static/saga_list.js",
]
#: The GET routes open to anyone: health checks, the API's description and its viewer, the
#: dashboard's page and assets (the page asks for the token), the index of links.
OPEN_GETS = {
    "/",
    "/health",
    "/inventory/health",
    "/orders/health",
    "/pupils/health",
    "/classes/health",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/docs/static/{name}",
    "/redoc",
    "/ui",
    "/ui/transfers/{transaction_id}",
    "/ui/sagas/{saga_type}/{saga_id}",
    "/ui/static/{name}",
}
#: The participants' reads, as each role serves them (the walk below must find them closed).
PARTICIPANT_READS = {
    ProcessRole.ALL: {
        "/inventory/faults",
        "/orders/faults",
        "/inventory/stock",
        "/inventory/reservations/{reservation_id}",
        "/inventory/audit",
        "/orders/orders",
        "/orders/orders/{order_id}",
        "/orders/audit",
        "/pupils/faults",
        "/pupils/pupils",
        "/pupils/pupils/{pupil_id}",
        "/pupils/audit",
        "/classes/faults",
        "/classes/classes",
        "/classes/classes/{class_id}",
        "/classes/audit",
    },
    ProcessRole.INVENTORY: {"/faults", "/stock", "/reservations/{reservation_id}", "/audit"},
    ProcessRole.ORDERS: {"/faults", "/orders", "/orders/{order_id}", "/audit"},
    ProcessRole.PUPILS: {"/faults", "/pupils", "/pupils/{pupil_id}", "/audit"},
    ProcessRole.CLASSES: {"/faults", "/classes", "/classes/{class_id}", "/audit"},
}
PARTICIPANT_READS[ProcessRole.ACCOUNTS] = PARTICIPANT_READS[ProcessRole.ALL]


@pytest.fixture(autouse=True)
def short_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    """An event stream answers its status, then ends at once (ASGITransport waits for the end)."""
    monkeypatch.setattr(dashboard, "STREAM_SECONDS", 0.0)


@pytest.fixture
async def closed(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = accounts_settings(
        tmp_path, role=ProcessRole.ALL, demo_accounts=1, admin_token=ADMIN, read_token=READ
    )
    async for client in asgi_client(settings):
        yield client


async def _status(client: httpx.AsyncClient, path: str, **kwargs: object) -> int:
    if path == "/ui/events":  # a stream: its status line is enough
        async with client.stream("GET", path, **kwargs) as reply:  # type: ignore[arg-type]
            return reply.status_code
    return (await client.get(path, **kwargs)).status_code  # type: ignore[arg-type]


@pytest.mark.parametrize("path", READS)
async def test_reads_need_a_token_when_one_is_configured(
    closed: httpx.AsyncClient, path: str
) -> None:
    reply = await closed.get(path) if path != "/ui/events" else None
    if reply is not None:
        assert reply.status_code == 401
        assert reply.json()["error"] == "unauthorized"
    assert await _status(closed, path) == 401
    wrong = {"Authorization": "Bearer nope"}
    assert await _status(closed, path, headers=wrong) == 401


@pytest.mark.parametrize("token", [ADMIN, READ])
@pytest.mark.parametrize("path", READS)
async def test_the_admin_or_the_read_token_opens_the_reads(
    closed: httpx.AsyncClient, path: str, token: str
) -> None:
    status = await _status(closed, path, headers={"Authorization": f"Bearer {token}"})
    assert status not in (401, 403), path
    assert status in (200, 404, 503), path  # 404: none-such; 503: books via loopback HTTP


async def test_the_event_stream_takes_the_token_as_a_query_parameter(
    closed: httpx.AsyncClient,
) -> None:
    assert await _status(closed, "/ui/events", params={"token": READ}) == 200
    assert await _status(closed, "/ui/events", params={"token": "nope"}) == 401
    # Only there: another read does not take it.
    assert (await closed.get("/accounts", params={"token": ADMIN})).status_code == 401


@pytest.mark.parametrize("path", OPEN)
async def test_health_and_the_dashboard_page_stay_open(
    closed: httpx.AsyncClient, path: str
) -> None:
    assert (await closed.get(path)).status_code == 200


async def test_the_read_token_opens_no_write(closed: httpx.AsyncClient) -> None:
    read = {"Authorization": f"Bearer {READ}"}
    opened = {"account_id": "z", "initial_balance": 1}
    assert (await closed.post("/accounts", json=opened, headers=read)).status_code == 401
    faults = {"rate": 0.0, "mode": "before"}
    assert (await closed.put("/admin/faults", json=faults, headers=read)).status_code == 401
    admin = {"Authorization": f"Bearer {ADMIN}"}
    assert (await closed.get("/accounts/z", headers=admin)).status_code == 404


async def test_without_tokens_the_reads_stay_open(tmp_path: Path) -> None:
    settings = accounts_settings(tmp_path, role=ProcessRole.ALL, demo_accounts=1)
    async for client in asgi_client(settings):
        for path in [p for p in READS if p not in ("/ui/events", "/ui/api/books")]:
            assert (await client.get(path)).status_code in (200, 404), path
        assert await _status(client, "/ui/events") == 200


async def test_the_dashboard_books_pass_the_callers_token_to_the_account_service(
    tmp_path: Path, launch: Launcher
) -> None:
    accounts = launch(admin_token=ADMIN, read_token=READ, demo_accounts=2, demo_balance=700)
    settings = accounts_settings(
        tmp_path,
        role=ProcessRole.ORCHESTRATOR,
        database_url=f"sqlite:///{tmp_path / 'sagas.db'}",
        accounts_url=accounts.url,
        admin_token=ADMIN,
        read_token=READ,
    )
    async for client in asgi_client(settings):
        reply = await client.get("/ui/api/books", headers={"Authorization": f"Bearer {READ}"})
        assert reply.status_code == 200, reply.text
        assert reply.json()["total"] == 1400
        assert reply.json()["audit"]["ok"] is True


def get_routes(app: FastAPI) -> set[str]:
    """Every GET route's path template, those of included routers (and their prefixes) too."""
    return {
        route.path
        for route in iter_route_contexts(app.routes)
        if route.path is not None and "GET" in (route.methods or ())
    }


async def assert_closed_to_all_but_the_readers(
    client: httpx.AsyncClient, template: str, readers: list[str]
) -> None:
    path = re.sub(r"\{[^}]+\}", "x", template)
    refused = await client.get(path) if path != "/ui/events" else None
    if refused is not None:
        assert refused.status_code == 401, path
        assert refused.json()["error"] == "unauthorized", path
    for wrong in (None, "nope", SERVICE):
        headers = {"Authorization": f"Bearer {wrong}"} if wrong else {}
        assert await _status(client, path, headers=headers) == 401, (path, wrong)
    for token in readers:
        status = await _status(client, path, headers={"Authorization": f"Bearer {token}"})
        assert status in (200, 404, 503), (path, status)  # 404: x; 503: books over loopback


@pytest.mark.parametrize("role", list(ProcessRole))
async def test_every_get_route_of_every_role_is_open_by_name_or_closed_to_all_but_readers(
    tmp_path: Path, role: ProcessRole
) -> None:
    settings = accounts_settings(
        tmp_path,
        role=role,
        demo_accounts=1,
        admin_token=ADMIN,
        read_token=READ,
        service_token=SERVICE,
    )
    async for client in asgi_client(settings):
        routes = get_routes(client.app)  # type: ignore[attr-defined]
        closed = routes - OPEN_GETS
        assert "/metrics" in closed  # the walk sees every role's routes, included ones too
        assert PARTICIPANT_READS.get(role, set()) <= closed
        for template in sorted(closed):
            await assert_closed_to_all_but_the_readers(client, template, [READ, ADMIN])
        for template in sorted(routes & OPEN_GETS):  # open indeed, not merely unlisted
            path = re.sub(r"\{[^}]+\}", "x", template)
            assert (await client.get(path)).status_code != 401, path


@pytest.mark.parametrize(
    "make", [create_inventory_app, create_orders_app, create_pupils_app, create_classes_app]
)
async def test_a_standalone_participant_app_guards_its_reads_with_its_read_token(
    tmp_path: Path, make: Callable[..., FastAPI]
) -> None:
    app = make(tmp_path / "participant.db", token=SERVICE, read_token=READ)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            routes = get_routes(app)
            closed = routes - OPEN_GETS
            assert {"/audit", "/faults"} <= closed
            for template in sorted(closed):
                await assert_closed_to_all_but_the_readers(client, template, [READ])
            assert (await client.get("/health")).status_code == 200
