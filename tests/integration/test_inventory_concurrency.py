"""Concurrent duplicates through real HTTP: the inventory service served by uvicorn on loopback,
many asyncio tasks sending the same reserve (or competing for the last units) at once. One
applies; every duplicate replays its answer; the stock never goes below zero."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import uvicorn

from repository_after.services.inventory_http import create_inventory_app

TASKS = 24


@asynccontextmanager
async def served(path: Path | str, token: str | None = None) -> AsyncIterator[str]:
    """The inventory app on a free loopback port (bound here, handed to uvicorn)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        app = create_inventory_app(path, token=token)
        server = uvicorn.Server(uvicorn.Config(app, log_config=None, ws="none", lifespan="on"))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            deadline = asyncio.get_running_loop().time() + 30
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("uvicorn stopped before it started")
                assert asyncio.get_running_loop().time() < deadline, "uvicorn did not start"
                await asyncio.sleep(0.01)
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            await task


async def _together(
    url: str, requests: list[tuple[str, dict[str, object]]]
) -> list[httpx.Response]:
    """Send every (key, body) reserve at once, each on its own connection, released together."""
    go = asyncio.Event()
    ready = 0

    async def one(key: str, body: dict[str, object]) -> httpx.Response:
        nonlocal ready
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            await client.get("/health")  # the connection is open before the start signal
            ready += 1
            if ready == len(requests):
                go.set()
            await go.wait()
            return await client.post("/reserve", json=body, headers={"transaction-id": key})

    return await asyncio.gather(*(one(k, b) for k, b in requests))


async def test_concurrent_duplicates_of_one_reserve_apply_once(tmp_path: Path) -> None:
    async with served(tmp_path / "inventory.db") as url:
        async with httpx.AsyncClient(base_url=url) as admin:
            await admin.post("/stock", json={"sku": "apple", "qty": 100})
        body = {"lines": [{"sku": "apple", "qty": 7}]}
        answers = await _together(url, [("order-1:reserve", body)] * TASKS)
        assert {r.status_code for r in answers} == {200}
        fresh = [r for r in answers if r.headers.get("idempotent-replayed") != "true"]
        assert len(fresh) == 1
        assert {r.content for r in answers} == {fresh[0].content}
        async with httpx.AsyncClient(base_url=url) as admin:
            (row,) = (await admin.get("/stock")).json()["stock"]
            assert row == {"sku": "apple", "opened": 100, "available": 93, "reserved": 7, "sold": 0}
            report = (await admin.get("/audit")).json()
            assert report["ok"], report
            assert report["reservations"] == {"reserved": 1}


async def test_concurrent_orders_for_the_last_units_never_oversell(tmp_path: Path) -> None:
    async with served(tmp_path / "inventory.db") as url:
        async with httpx.AsyncClient(base_url=url) as admin:
            await admin.post("/stock", json={"sku": "plum", "qty": 5})
        body = {"lines": [{"sku": "plum", "qty": 1}]}
        answers = await _together(url, [(f"order-{i}:reserve", body) for i in range(TASKS)])
        codes = sorted(r.status_code for r in answers)
        assert codes == [200] * 5 + [409] * (TASKS - 5)
        assert {r.json()["error"] for r in answers if r.status_code == 409} == {"out_of_stock"}
        async with httpx.AsyncClient(base_url=url) as admin:
            (row,) = (await admin.get("/stock")).json()["stock"]
            assert (row["available"], row["reserved"]) == (0, 5)
            assert (await admin.get("/audit")).json()["ok"]
