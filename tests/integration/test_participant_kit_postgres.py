"""The participant kit on a database server, PostgreSQL (`participant_kit.postgres`) and MariaDB
(`participant_kit.mysql`): the inventory service keeps the whole participant contract there too,
and two replicas on one database (two stores, two pools) apply concurrent duplicates once and
never oversell the last units; an order's confirm and its cancel, under different keys, are
ordered by the order's row lock."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import psycopg
import pytest

from repository_after.adapters.mysql_db import connect
from repository_after.adapters.postgres_db import postgres_conninfo
from repository_after.participant_kit import ParticipantService, Refusal, Tx
from repository_after.participant_kit.contract import run_contract
from repository_after.participant_kit.postgres import translate
from repository_after.services.inventory import ReserveIn, audit, open_inventory, open_stock
from repository_after.services.inventory_http import create_inventory_app
from repository_after.services.orders import (
    OrderIn,
    cancel,
    confirm,
    create,
    find_order,
    open_orders,
)
from tests.integration.test_participant_contract import INVENTORY


@pytest.fixture
async def replicas(server_url: str) -> AsyncIterator[tuple[ParticipantService, ...]]:
    services = (open_inventory(server_url), open_inventory(server_url))
    try:
        yield services
    finally:
        for service in services:
            await service.store.close()


def test_placeholders_are_translated_and_percent_signs_kept_literal() -> None:
    assert translate("SELECT a FROM t WHERE b = ? AND c LIKE 'x%'") == (
        "SELECT a FROM t WHERE b = %s AND c LIKE 'x%%'"
    )


async def test_the_inventory_service_on_a_server_keeps_the_participant_contract(
    server_url: str,
) -> None:
    app = create_inventory_app(server_url)
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


async def _lock_waiters(url: str) -> int:
    """How many sessions of this database wait on a lock (another transaction's row lock)."""
    if url.startswith("mysql://"):
        return await asyncio.to_thread(_mysql_lock_waiters, url)

    def count() -> int:
        with psycopg.connect(postgres_conninfo(url), autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()
            return int(row[0]) if row else 0

    return await asyncio.to_thread(count)


def _mysql_lock_waiters(url: str) -> int:
    """MariaDB: sessions of this database waiting on a row lock. A `SELECT ... FOR UPDATE` by
    primary key waits while it is still being optimised (processlist state `Statistics`: the
    optimiser reads, and so locks, the one row), where `innodb_trx` does not list it as `LOCK
    WAIT`; so a session still running a locking read counts too (the row it wants is held)."""
    conn = connect(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT COUNT(*) FROM information_schema.processlist AS p"
                " LEFT JOIN information_schema.innodb_trx AS t ON t.trx_mysql_thread_id = p.id"
                " WHERE p.db = DATABASE() AND p.id <> CONNECTION_ID() AND (t.trx_state ="
                " 'LOCK WAIT' OR (p.command = 'Query' AND p.info LIKE '%FOR UPDATE%'))"
            )
            return int(cursor.fetchone()[0])
    finally:
        conn.close()


def _cancel(tx: Tx) -> dict[str, Any]:
    return cancel(tx, "s-1:create", {"order_id": "o-1"})


def _confirm(tx: Tx) -> dict[str, Any]:
    return confirm(tx, "s-1:confirm", {"order_id": "o-1"})


@pytest.mark.parametrize(
    ("first", "second", "state", "refusal"),
    [
        (_cancel, _confirm, "cancelled", "order_cancelled"),
        (_confirm, _cancel, "confirmed", "order_confirmed"),
    ],
    ids=["cancel-first", "confirm-first"],
)
async def test_a_confirm_and_a_cancel_of_one_order_under_two_keys_never_both_apply(
    server_url: str,
    first: Callable[[Tx], dict[str, Any]],
    second: Callable[[Tx], dict[str, Any]],
    state: str,
    refusal: str,
) -> None:
    """An order's `cancel` (the compensation of `create`, key `<saga>:create`) and its `confirm`
    (key `<saga>:confirm`) hold different kit locks: the order's row lock (`FOR UPDATE`) is what
    orders them on PostgreSQL and MariaDB. The one that reads the order while the other holds
    it waits, then sees what the other did and refuses: never both."""
    store = open_orders(server_url).store
    try:
        order = {"order_id": "o-1", "customer": "acc-01", "merchant": "acc-02"}
        body = {**order, "lines": [{"sku": "apple", "qty": 1}], "total": 5}
        await store.transaction(lambda tx: create(tx, "s-1:create", OrderIn(**body).model_dump()))
        held, go = threading.Event(), threading.Event()

        def first_and_hold(tx: Tx) -> dict[str, Any]:
            answer = first(tx)
            held.set()
            assert go.wait(30)
            return answer

        holding = asyncio.ensure_future(store.transaction(first_and_hold))
        assert await asyncio.to_thread(held.wait, 30)
        waiting = asyncio.ensure_future(store.transaction(second))
        deadline = asyncio.get_running_loop().time() + 30
        while await _lock_waiters(server_url) == 0:  # the second waits on the order's row
            assert asyncio.get_running_loop().time() < deadline, "the second never waited"
            await asyncio.sleep(0.01)
        go.set()
        assert (await holding)["status"] == state
        with pytest.raises(Refusal) as refused:
            await waiting
        assert refused.value.code == refusal
        found = await store.read(lambda tx: find_order(tx, "o-1"))
        assert found is not None
        assert found["state"] == state
    finally:
        await store.close()
