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
from fastapi import FastAPI

from repository_after.services.inventory_http import create_inventory_app
from repository_after.services.orders_http import create_orders_app

FACTORIES = {"sagabank inventory": create_inventory_app, "sagabank orders": create_orders_app}
SERVICE, READ = "service-token-0123456789", "read-token-0123456789"


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
            for token, status in [(None, 401), (SERVICE, 401), (READ, 200)]:
                r = await c.get("/faults", headers=bearer(token) if token else None)
                assert r.status_code == status, token
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
