"""Every kit participant's reads check their ids before any query, on every backend: the pupils'
and the classes services', the orders service's and the inventory's.

A pupil or class id in the path, or the `after` cursor of a page, with a NUL byte, too long or
outside the id pattern answers 422 `invalid_request` (as the product's own path ids do:
`test_ids_validated`), never 503 `storage_unavailable`: PostgreSQL's driver refuses NUL in text,
so an unchecked id reached the database and failed there. Good ids still read (404 / 200).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from repository_after.services.classes_http import create_classes_app
from repository_after.services.inventory_http import create_inventory_app
from repository_after.services.orders_http import create_orders_app
from repository_after.services.pupils_http import create_pupils_app

BAD = ["a%00b", "x" * 200, "a%20b", "a%0A"]
SERVICES: list[tuple[Callable[..., FastAPI], str]] = [
    (create_pupils_app, "/pupils"),
    (create_classes_app, "/classes"),
    (create_orders_app, "/orders"),
]
#: The inventory's one read by id, a reservation (its id is the reserving call's key); its stock
#: list is not paged.
RESERVATIONS = "/reservations"


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    if request.param == "sqlite":
        return tmp_path / "one.db"
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


async def _clients(database: Path | str) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    for make, root in SERVICES:
        app = make(database)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
                yield root, c


@pytest.mark.parametrize("bad", BAD, ids=["nul", "long", "space", "newline"])
async def test_a_bad_id_or_cursor_is_422_before_any_query(database: Path | str, bad: str) -> None:
    async for root, client in _clients(database):
        for path in (f"{root}/{bad}", f"{root}?after={bad}"):
            reply = await client.get(path)
            assert reply.status_code == 422, (path, reply.text)
            assert reply.json()["error"] == "invalid_request", path


@pytest.mark.parametrize("bad", BAD, ids=["nul", "long", "space", "newline"])
async def test_a_bad_reservation_id_is_422_before_any_query(database: Path | str, bad: str) -> None:
    app = create_inventory_app(database)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            reply = await client.get(f"{RESERVATIONS}/{bad}")
            assert reply.status_code == 422, reply.text
            assert reply.json()["error"] == "invalid_request"
            assert (await client.get(f"{RESERVATIONS}/s-1:reserve")).status_code == 404


async def test_good_ids_and_cursors_still_read(database: Path | str) -> None:
    async for root, client in _clients(database):
        assert (await client.get(f"{root}/no-such.id:1")).status_code == 404
        assert (await client.get(f"{root}?after=a.b:c-d_e")).status_code == 200
        assert (await client.get(root)).status_code == 200
