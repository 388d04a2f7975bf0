"""The orchestrator's own client (`HttpParticipant`, real transport, uvicorn on loopback) reads
the inventory service's answers as the saga engine needs: a reservation SUCCEEDED with its
status word and the reservation id a later step reads, out of stock REJECTED (definite), a
late reserve after its release REJECTED; calls that pile up go as `/batch` and come back item
by item, each applied once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from repository_after.adapters.http_participant import HttpParticipant
from repository_after.domain.saga import Outcome
from repository_after.service_layer.saga_ports import CallResult
from tests.integration.test_inventory_concurrency import served

TOKEN = "inv-t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Counting(httpx.AsyncBaseTransport):
    """httpx's own transport, noting the path of every exchange."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.paths.append(request.url.path)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _lines(*pairs: tuple[str, int]) -> dict[str, object]:
    return {"lines": [{"sku": s, "qty": q} for s, q in pairs]}


async def test_the_saga_client_reads_inventory_answers_as_outcomes(tmp_path: Path) -> None:
    async with served(tmp_path / "inventory.db", token=TOKEN) as url:
        async with httpx.AsyncClient(base_url=url, headers=AUTH) as admin:
            assert (await admin.post("/stock", json={"sku": "apple", "qty": 5})).is_success
        client = HttpParticipant({"inventory": url}, batching=False, headers=AUTH)
        try:

            async def call(operation: str, key: str, body: dict[str, object]) -> CallResult:
                return await client.call(
                    service="inventory",
                    operation=operation,
                    transaction_id=key,
                    body=body,
                    timeout=10,
                )

            ok = await call("reserve", "s1:reserve", _lines(("apple", 2)))
            assert (ok.outcome, ok.result) == (Outcome.SUCCEEDED, "reserved")
            assert ok.body is not None
            assert ok.body["reservation_id"] == "s1:reserve"
            short = await call("reserve", "s2:reserve", _lines(("apple", 9)))
            assert (short.outcome, short.error) == (Outcome.REJECTED, "out_of_stock")
            tomb = await call("release", "s3:reserve", _lines(("apple", 1)))
            assert (tomb.outcome, tomb.result) == (Outcome.SUCCEEDED, "nothing_to_compensate")
            late = await call("reserve", "s3:reserve", _lines(("apple", 1)))
            assert (late.outcome, late.error) == (Outcome.REJECTED, "transaction_compensated")
            sold = await call("sell", "s1:sell", {"reservation_id": ok.body["reservation_id"]})
            assert (sold.outcome, sold.result) == (Outcome.SUCCEEDED, "sold")
        finally:
            await client.close()
        unauthenticated = HttpParticipant({"inventory": url}, batching=False)
        try:
            refused = await unauthenticated.call(
                service="inventory",
                operation="reserve",
                transaction_id="s4:reserve",
                body=_lines(("apple", 1)),
                timeout=10,
            )
            assert (refused.outcome, refused.error) == (Outcome.REJECTED, "unauthorized")
        finally:
            await unauthenticated.close()


async def test_calls_that_pile_up_go_as_batches_and_each_applies_once(tmp_path: Path) -> None:
    async with served(tmp_path / "inventory.db") as url:
        async with httpx.AsyncClient(base_url=url) as admin:
            assert (await admin.post("/stock", json={"sku": "pear", "qty": 100})).is_success
        transport = Counting()
        client = HttpParticipant(
            {"inventory": url}, batching=True, max_in_flight=1, transport=transport
        )
        try:
            keys = [f"order-{i}:reserve" for i in range(30)] * 2  # every call sent twice
            results = await asyncio.gather(
                *(
                    client.call(
                        service="inventory",
                        operation="reserve",
                        transaction_id=key,
                        body=_lines(("pear", 1)),
                        timeout=10,
                    )
                    for key in keys
                )
            )
        finally:
            await client.close()
        assert {r.outcome for r in results} == {Outcome.SUCCEEDED}
        for key, r in zip(keys, results, strict=True):
            assert r.body is not None
            assert r.body["reservation_id"] == key
        assert "/batch" in transport.paths  # they did pile up
        async with httpx.AsyncClient(base_url=url) as admin:
            (row,) = (await admin.get("/stock")).json()["stock"]
            assert (row["available"], row["reserved"]) == (70, 30)
            assert (await admin.get("/audit")).json()["ok"]
