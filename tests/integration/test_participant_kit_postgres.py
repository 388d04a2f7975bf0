"""The participant kit on PostgreSQL (`participant_kit.postgres`): the inventory service keeps
the whole participant contract there too, and two replicas on one database (two stores, two
pools) apply concurrent duplicates once and never oversell the last units."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from repository_after.participant_kit import ParticipantService
from repository_after.participant_kit.contract import run_contract
from repository_after.participant_kit.postgres import translate
from repository_after.services.inventory import ReserveIn, audit, open_inventory, open_stock
from repository_after.services.inventory_http import create_inventory_app
from tests.integration.test_participant_contract import INVENTORY


@pytest.fixture
async def replicas(postgres_url: str) -> AsyncIterator[tuple[ParticipantService, ...]]:
    services = (open_inventory(postgres_url), open_inventory(postgres_url))
    try:
        yield services
    finally:
        for service in services:
            await service.store.close()


def test_placeholders_are_translated_and_percent_signs_kept_literal() -> None:
    assert translate("SELECT a FROM t WHERE b = ? AND c LIKE 'x%'") == (
        "SELECT a FROM t WHERE b = %s AND c LIKE 'x%%'"
    )


async def test_the_inventory_service_on_postgres_keeps_the_participant_contract(
    postgres_url: str,
) -> None:
    app = create_inventory_app(postgres_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            for sku in ("widget", "gadget"):
                assert (await client.post("/stock", json={"sku": sku, "qty": 10_000})).is_success
            await run_contract(client, INVENTORY)
            report = (await client.get("/audit")).json()
            assert report["ok"], report["violations"]


async def test_two_replicas_apply_concurrent_duplicates_of_one_reserve_once(replicas) -> None:
    a, b = replicas
    await a.store.transaction(lambda tx: open_stock(tx, "apple", 100))
    order = ReserveIn.model_validate({"lines": [{"sku": "apple", "qty": 7}]})
    answers = await asyncio.gather(*(s.perform("reserve", "o-1", order) for s in (a, b) * 8))
    assert {x.status_code for x in answers} == {200}
    assert sorted(x.replayed for x in answers) == [False] + [True] * 15
    assert len({x.body for x in answers}) == 1
    report = await b.store.read(audit)
    assert report.ok, report.violations
    assert report.reservations == {"reserved": 1}


async def test_two_replicas_never_oversell_the_last_units(replicas) -> None:
    a, b = replicas
    await a.store.transaction(lambda tx: open_stock(tx, "plum", 5))
    await a.store.transaction(lambda tx: open_stock(tx, "pear", 5))
    # half the orders list their lines in the other order: row locks are taken in SKU order
    orders = [
        ReserveIn.model_validate(
            {
                "lines": [
                    {"sku": s, "qty": 1} for s in (("plum", "pear") if i % 2 else ("pear", "plum"))
                ]
            }
        )
        for i in range(16)
    ]
    answers = await asyncio.gather(
        *((a, b)[i % 2].perform("reserve", f"o-{i}", order) for i, order in enumerate(orders))
    )
    assert sorted(x.status_code for x in answers) == [200] * 5 + [409] * 11
    report = await a.store.read(audit)
    assert report.ok, report.violations
    assert report.reservations == {"reserved": 5}
