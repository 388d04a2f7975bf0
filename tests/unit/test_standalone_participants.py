"""A standalone participant service (`create_inventory_app`, `create_orders_app`) is built from
what it is given: its title, its read token on every read, its service token on every write,
and the hosts it trusts. (The walk over every read route of every host is
tests/integration/test_closed_reads.py; this is the factories' own wiring, kept among the tests
that the mutation runs use.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request

from repository_after.services.hosting import MAX_BODY_BYTES, standalone
from repository_after.services.inventory_http import create_inventory_app
from repository_after.services.orders_http import create_orders_app

FACTORIES = {"sagabank inventory": create_inventory_app, "sagabank orders": create_orders_app}
SERVICE, READ = "service-token-0123456789", "read-token-0123456789"


UNAUTHORIZED = {"error": "unauthorized", "message": "this endpoint requires the read token"}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.mark.parametrize(("title", "make"), FACTORIES.items())
async def test_a_standalone_participant_takes_its_title_tokens_and_trusted_hosts(
    tmp_path: Path, title: str, make: Callable[..., FastAPI]
) -> None:
    app = make(tmp_path / "p.db", token=SERVICE, read_token=READ, trusted_hosts=["svc.internal"])
    assert app.title == title
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://svc.internal") as c:
            for token in (None, SERVICE):
                r = await c.get("/faults", headers=bearer(token) if token else None)
                assert (r.status_code, r.json()) == (401, UNAUTHORIZED), token
            assert (await c.get("/faults", headers=bearer(READ))).status_code == 200
            assert (await c.post("/batch", json={}, headers=bearer(READ))).status_code == 401
            assert (await c.post("/batch", json={}, headers=bearer(SERVICE))).status_code == 422
            r = await c.get("/faults", headers={**bearer(READ), "host": "localhost"})
            assert (r.status_code, r.json()["error"]) == (400, "untrusted_host")


@pytest.mark.parametrize("make", FACTORIES.values())
async def test_a_standalone_participant_without_tokens_is_open_on_loopback(
    tmp_path: Path, make: Callable[..., FastAPI]
) -> None:
    app = make(tmp_path / "p.db")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        for host in ("127.0.0.1", "localhost"):
            async with httpx.AsyncClient(transport=transport, base_url=f"http://{host}") as c:
                assert (await c.get("/faults")).status_code == 200
                assert (await c.post("/batch", json={})).status_code == 422


@pytest.mark.parametrize(
    ("make", "reads"),
    [
        (create_inventory_app, ["/stock", "/reservations/none", "/audit", "/faults"]),
        (create_orders_app, ["/orders", "/orders/none", "/audit", "/faults"]),
    ],
)
async def test_a_participant_s_reads_answer_json_and_say_so(
    tmp_path: Path, make: Callable[..., FastAPI], reads: list[str]
) -> None:
    """Every read, found (200) or not (404), is a JSON body sent as `application/json`."""
    app = make(tmp_path / "p.db")
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
            for path in reads:
                r = await c.get(path)
                assert r.status_code == (404 if path.endswith("/none") else 200), path
                assert r.headers["content-type"] == "application/json", path
                assert isinstance(r.json(), dict), path


class Store:
    """A store that only says whether it was closed."""

    closed = False

    async def close(self) -> None:
        self.closed = True


async def test_a_standalone_participant_closes_its_store_and_takes_a_megabyte_body() -> None:
    store = Store()
    router = APIRouter()

    @router.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    app = standalone("t", router, APIRouter(), store, read_token=None)  # type: ignore[arg-type]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
            # a batch of 128 orders of 50 lines is far above the product's 64 KiB
            assert (await c.post("/echo", content=b"x" * MAX_BODY_BYTES)).json() == {
                "bytes": MAX_BODY_BYTES
            }
            too_big = await c.post("/echo", content=b"x" * (MAX_BODY_BYTES + 1))
            assert too_big.status_code == 413
        assert not store.closed
    assert store.closed
