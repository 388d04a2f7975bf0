"""The orders service (on the participant kit) over HTTP on a real SQLite file: an order created
pending, cancelled by its compensation, confirmed by a retriable step (idempotent per key, a
cancelled order refused), its reads, and an audit that finds books breaking its invariants."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from repository_after.services.orders import MAX_LIST
from repository_after.services.orders_http import create_orders_app

TOKEN = "ord3rs-t0ken"


def new_key(step: str = "create") -> str:
    return f"saga-{uuid.uuid4().hex[:12]}:{step}"


def order(order_id: str, **overrides: Any) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "customer": "acc-01",
        "merchant": "acc-02",
        "lines": [{"sku": "apple", "qty": 2}, {"sku": "pear", "qty": 1}],
        "total": 1250,
        **overrides,
    }


async def _client(path: Path, token: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
    app = create_orders_app(path, token=token)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            yield client


@pytest.fixture
async def orders(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(tmp_path / "orders.db"):
        yield client


async def call(
    client: httpx.AsyncClient, operation: str, key: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    return await client.post(f"/{operation}", json=body, headers={"transaction-id": key})


async def audit(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/audit")
    assert r.status_code == 200
    report: dict[str, Any] = r.json()
    return report


async def test_create_writes_the_order_pending_with_its_lines(orders) -> None:
    key = new_key()
    r = await call(orders, "create", key, order("o-1"))
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "created", "order_id": "o-1", "state": "pending"}
    got = await orders.get("/orders/o-1")
    assert got.status_code == 200
    assert got.json() == {
        "order_id": "o-1",
        "created_key": key,
        "customer": "acc-01",
        "merchant": "acc-02",
        "total": 1250,
        "state": "pending",
        "lines": [{"sku": "apple", "qty": 2}, {"sku": "pear", "qty": 1}],
    }
    report = await audit(orders)
    assert report == {"ok": True, "orders": {"pending": 1}, "violations": []}


async def test_an_order_id_taken_under_another_key_is_refused_and_changes_nothing(
    orders,
) -> None:
    assert (await call(orders, "create", new_key(), order("o-1"))).status_code == 200
    again = await call(orders, "create", new_key(), order("o-1", total=1))
    assert (again.status_code, again.json()) == (
        409,
        {"error": "order_exists", "message": "order 'o-1' already exists"},
    )
    assert (await orders.get("/orders/o-1")).json()["total"] == 1250


async def test_cancel_undoes_a_pending_order_once(orders) -> None:
    key = new_key()
    await call(orders, "create", key, order("o-1"))
    first = await call(orders, "cancel", key, order("o-1"))
    assert first.status_code == 200
    assert first.json() == {"status": "cancelled", "order_id": "o-1"}
    again = await call(orders, "cancel", key, order("o-1"))
    assert (again.content, again.headers["idempotent-replayed"]) == (first.content, "true")
    assert (await orders.get("/orders/o-1")).json()["state"] == "cancelled"
    report = await audit(orders)
    assert report == {"ok": True, "orders": {"cancelled": 1}, "violations": []}


async def test_a_cancel_before_its_create_fences_the_late_create(orders) -> None:
    key = new_key()
    tomb = await call(orders, "cancel", key, order("o-1"))
    assert tomb.json()["status"] == "nothing_to_compensate"
    late = await call(orders, "create", key, order("o-1"))
    assert (late.status_code, late.json()["error"]) == (409, "transaction_compensated")
    assert (await orders.get("/orders/o-1")).status_code == 404


async def test_confirm_is_idempotent_per_key_and_refuses_a_cancelled_order(orders) -> None:
    await call(orders, "create", new_key(), order("o-1"))
    key = new_key("confirm")
    first = await call(orders, "confirm", key, {"order_id": "o-1"})
    assert first.status_code == 200
    assert first.json() == {"status": "confirmed", "order_id": "o-1"}
    again = await call(orders, "confirm", key, {"order_id": "o-1"})
    assert (again.content, again.headers["idempotent-replayed"]) == (first.content, "true")
    other = await call(orders, "confirm", new_key("confirm"), {"order_id": "o-1"})
    assert (other.status_code, other.json()["error"]) == (409, "order_confirmed")

    created = new_key()
    await call(orders, "create", created, order("o-2"))
    await call(orders, "cancel", created, order("o-2"))
    refused = await call(orders, "confirm", new_key("confirm"), {"order_id": "o-2"})
    assert (refused.status_code, refused.json()) == (
        409,
        {"error": "order_cancelled", "message": "order 'o-2' is cancelled"},
    )
    unknown = await call(orders, "confirm", new_key("confirm"), {"order_id": "o-3"})
    assert (unknown.status_code, unknown.json()) == (
        409,
        {"error": "order_not_found", "message": "no order 'o-3'"},
    )
    report = await audit(orders)
    assert report == {"ok": True, "orders": {"confirmed": 1, "cancelled": 1}, "violations": []}


async def test_a_confirmed_order_cannot_be_cancelled(orders) -> None:
    key = new_key()
    await call(orders, "create", key, order("o-1"))
    await call(orders, "confirm", new_key("confirm"), {"order_id": "o-1"})
    refused = await call(orders, "cancel", key, order("o-1"))
    assert (refused.status_code, refused.json()) == (
        409,
        {"error": "order_confirmed", "message": "order 'o-1' is confirmed"},
    )
    assert (await orders.get("/orders/o-1")).json()["state"] == "confirmed"
    assert (await audit(orders))["ok"]


@pytest.mark.parametrize(
    "changes",
    [
        {"lines": []},
        {"lines": [{"sku": f"s{i}", "qty": 1} for i in range(51)]},
        {"lines": [{"sku": "apple", "qty": 1}, {"sku": "apple", "qty": 2}]},
        {"lines": [{"sku": "apple", "qty": 0}]},
        {"total": 0},
        {"total": 10**12 + 1},
        {"total": 12.5},
        {"total": "1250"},
        {"order_id": "has space"},
        {"customer": ""},
        {"extra": 1},
    ],
)
async def test_a_malformed_order_is_refused_and_records_nothing(orders, changes) -> None:
    key = new_key()
    bad = await call(orders, "create", key, {**order("o-1"), **changes})
    assert (bad.status_code, bad.json()["error"]) == (422, "invalid_request")
    first = await call(orders, "create", key, order("o-1"))
    assert (first.status_code, first.headers.get("idempotent-replayed")) == (200, None)


async def test_the_order_list_is_bounded_and_pages_by_order_id(orders) -> None:
    for n in range(5):
        await call(orders, "create", new_key(), order(f"o-{n}"))
    await call(orders, "create", new_key(), order("A-0"))  # sorts before lower case
    page = (await orders.get("/orders", params={"limit": 2})).json()["orders"]
    assert [o["order_id"] for o in page] == ["A-0", "o-0"]
    assert (await audit(orders))["orders"] == {"pending": 6}
    rest = (await orders.get("/orders", params={"after": "o-1"})).json()["orders"]
    assert [o["order_id"] for o in rest] == ["o-2", "o-3", "o-4"]
    too_many = await orders.get("/orders", params={"limit": MAX_LIST + 1})
    assert too_many.status_code == 422
    missing = await orders.get("/orders/nope")
    assert (missing.status_code, missing.json()) == (
        404,
        {"error": "order_not_found", "message": "no such order"},
    )


async def test_with_a_token_operations_need_it_and_reads_do_not(tmp_path: Path) -> None:
    async for client in _client(tmp_path / "orders.db", TOKEN):
        refused = await call(client, "create", new_key(), order("o-1"))
        assert (refused.status_code, refused.json()["error"]) == (401, "unauthorized")
        assert (await client.get("/orders/o-1")).status_code == 404
        ok = await client.post(
            "/create",
            json=order("o-1"),
            headers={"transaction-id": new_key(), "Authorization": f"Bearer {TOKEN}"},
        )
        assert ok.status_code == 200
        assert (await client.get("/orders")).status_code == 200


def _tamper(path: Path, sql: str) -> None:
    conn = sqlite3.connect(path)
    with conn:
        conn.execute(sql)
    conn.close()


@pytest.mark.parametrize(
    ("sql", "violation"),
    [
        (
            "UPDATE orders SET state = 'confirmed'",
            "is confirmed but was cancelled 1 and confirmed 0",
        ),
        ("UPDATE orders SET created_key = 'forged'", "has no applied create"),
        (
            "INSERT INTO participant_records VALUES ('confirm', 'forged', 'null', 200,"
            ' \'{"status":"confirmed","order_id":"o-1"}\', 1, \'now\')',
            "both confirmed and cancelled",
        ),
    ],
)
async def test_the_audit_finds_books_that_break_an_invariant(
    tmp_path: Path, sql: str, violation: str
) -> None:
    path = tmp_path / "orders.db"
    async for client in _client(path):
        key = new_key()
        await call(client, "create", key, order("o-1"))
        await call(client, "cancel", key, order("o-1"))
        assert (await audit(client))["ok"]
    _tamper(path, sql)
    async for client in _client(path):
        report = await audit(client)
        assert not report["ok"]
        assert any(violation in v for v in report["violations"]), report


@pytest.mark.parametrize("key", ["s-1:create", "XXXX"])  # any key, however short
async def test_the_audit_finds_an_order_whose_create_was_lost(tmp_path: Path, key: str) -> None:
    path = tmp_path / "orders.db"
    async for client in _client(path):
        await call(client, "create", key, order("o-1"))
    _tamper(path, "DELETE FROM order_lines")
    _tamper(path, "DELETE FROM orders")
    async for client in _client(path):
        report = await audit(client)
        assert any("applied but order 'o-1' is not its" in v for v in report["violations"])
