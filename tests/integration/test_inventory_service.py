"""The inventory service (on the participant kit) over HTTP on a real SQLite file: reserving
the order's lines, out of stock, release, sell, its stock routes and its audit."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from repository_after.services.inventory import MAX_LINES, MAX_STOCK
from repository_after.services.inventory_http import create_inventory_app

TOKEN = "inv-t0ken"


def new_key(step: str = "reserve") -> str:
    return f"order-{uuid.uuid4().hex[:12]}:{step}"


async def _client(path: Path, token: str | None) -> AsyncIterator[httpx.AsyncClient]:
    app = create_inventory_app(path, token=token)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            yield client


@pytest.fixture
async def inv(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _client(tmp_path / "inventory.db", None):
        for sku, qty in (("apple", 10), ("pear", 5), ("plum", 1)):
            r = await client.post("/stock", json={"sku": sku, "qty": qty})
            assert r.status_code == 200, r.text
        yield client


async def stock(client: httpx.AsyncClient) -> dict[str, dict[str, int]]:
    r = await client.get("/stock")
    assert r.status_code == 200
    return {row.pop("sku"): row for row in r.json()["stock"]}


async def audit(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/audit")
    assert r.status_code == 200
    report: dict[str, Any] = r.json()
    return report


async def call(
    client: httpx.AsyncClient, operation: str, key: str, body: dict[str, Any] | None = None
) -> httpx.Response:
    return await client.post(f"/{operation}", json=body, headers={"transaction-id": key})


def refused(code: str, message: str) -> dict[str, str]:
    return {"error": code, "message": message}


def lines(*pairs: tuple[str, int]) -> dict[str, Any]:
    return {"lines": [{"sku": sku, "qty": qty} for sku, qty in pairs]}


async def test_reserving_moves_every_line_from_available_to_reserved(inv) -> None:
    key = new_key()
    r = await call(inv, "reserve", key, lines(("apple", 3), ("pear", 2)))
    assert r.status_code == 200
    assert r.json() == {
        "status": "reserved",
        "reservation_id": key,
        "lines": [{"sku": "apple", "qty": 3}, {"sku": "pear", "qty": 2}],
    }
    rows = await stock(inv)
    assert rows["apple"] == {"opened": 10, "available": 7, "reserved": 3, "sold": 0}
    assert rows["pear"] == {"opened": 5, "available": 3, "reserved": 2, "sold": 0}
    report = await audit(inv)
    assert report["ok"], report
    assert report["reservations"] == {"reserved": 1}


async def test_one_line_out_of_stock_refuses_the_order_naming_the_sku_and_reserves_nothing(
    inv,
) -> None:
    before = await stock(inv)
    key = new_key()
    r = await call(inv, "reserve", key, lines(("apple", 3), ("pear", 6)))
    assert r.status_code == 409
    assert r.json()["error"] == "out_of_stock"
    assert "'pear'" in r.json()["message"]
    assert "'apple'" not in r.json()["message"]
    assert await stock(inv) == before
    # recorded: the same order is refused the same way even once stock arrives
    await inv.post("/stock", json={"sku": "pear", "qty": 100})
    again = await call(inv, "reserve", key, lines(("apple", 3), ("pear", 6)))
    assert (again.status_code, again.content) == (409, r.content)
    assert again.headers["idempotent-replayed"] == "true"
    assert (await stock(inv))["apple"]["available"] == 10


async def test_an_sku_never_stocked_is_out_of_stock(inv) -> None:
    r = await call(inv, "reserve", new_key(), lines(("kiwi", 1)))
    assert (r.status_code, r.json()["error"]) == (409, "out_of_stock")
    assert "'kiwi'" in r.json()["message"]


async def test_the_last_unit_can_be_reserved_and_no_more(inv) -> None:
    assert (await call(inv, "reserve", new_key(), lines(("plum", 1)))).status_code == 200
    assert (await call(inv, "reserve", new_key(), lines(("plum", 1)))).status_code == 409
    assert (await stock(inv))["plum"] == {"opened": 1, "available": 0, "reserved": 1, "sold": 0}


@pytest.mark.parametrize(
    "body",
    [
        {"lines": []},
        {"lines": [{"sku": f"s{i}", "qty": 1} for i in range(MAX_LINES + 1)]},
        {"lines": [{"sku": "apple", "qty": 1}, {"sku": "apple", "qty": 2}]},
        {"lines": [{"sku": "apple", "qty": 0}]},
        {"lines": [{"sku": "apple", "qty": -1}]},
        {"lines": [{"sku": "apple", "qty": "1"}]},
        {"lines": [{"sku": "apple", "qty": 1.0}]},
        {"lines": [{"sku": "apple", "qty": True}]},
        {"lines": [{"sku": "bad sku", "qty": 1}]},
        {"lines": [{"sku": "apple", "qty": 1, "price": 3}]},
        {"lines": [{"sku": "apple", "qty": 1}], "extra": 1},
        {},
        None,
    ],
)
async def test_a_malformed_order_is_refused_and_records_nothing(inv, body) -> None:
    key = new_key()
    r = await call(inv, "reserve", key, body)
    assert (r.status_code, r.json()["error"]) == (422, "invalid_request")
    ok = await call(inv, "reserve", key, lines(("apple", 1)))
    assert (ok.status_code, ok.headers.get("idempotent-replayed")) == (200, None)


async def test_fifty_lines_is_an_order_that_fits(inv) -> None:
    for i in range(MAX_LINES):
        await inv.post("/stock", json={"sku": f"s{i}", "qty": 1})
    r = await call(
        inv, "reserve", new_key(), {"lines": [{"sku": f"s{i}", "qty": 1} for i in range(50)]}
    )
    assert r.status_code == 200
    assert len(r.json()["lines"]) == MAX_LINES


async def test_release_returns_the_reserved_quantities_once(inv) -> None:
    key = new_key()
    order = lines(("apple", 3), ("pear", 2))
    await call(inv, "reserve", key, order)
    r = await call(inv, "release", key, order)
    assert r.json() == {
        "status": "released",
        "reservation_id": key,
        "lines": [{"sku": "apple", "qty": 3}, {"sku": "pear", "qty": 2}],
    }
    again = await call(inv, "release", key, order)
    assert again.headers["idempotent-replayed"] == "true"
    rows = await stock(inv)
    assert rows["apple"] == {"opened": 10, "available": 10, "reserved": 0, "sold": 0}
    assert rows["pear"] == {"opened": 5, "available": 5, "reserved": 0, "sold": 0}
    report = await audit(inv)
    assert report["ok"], report
    assert report["reservations"] == {"released": 1}


async def test_sell_moves_the_reservation_from_reserved_to_sold(inv) -> None:
    key = new_key()
    await call(inv, "reserve", key, lines(("apple", 3)))
    sale = new_key("sell")
    r = await call(inv, "sell", sale, {"reservation_id": key})
    assert r.json() == {
        "status": "sold",
        "reservation_id": key,
        "lines": [{"sku": "apple", "qty": 3}],
    }
    assert (await call(inv, "sell", sale, {"reservation_id": key})).content == r.content
    assert (await stock(inv))["apple"] == {"opened": 10, "available": 7, "reserved": 0, "sold": 3}
    report = await audit(inv)
    assert report["ok"], report
    assert (report["skus"], report["reservations"]) == (3, {"sold": 1})  # apple, pear, plum


async def test_sell_refuses_an_unknown_released_or_already_sold_reservation(inv) -> None:
    r = await call(inv, "sell", new_key("sell"), {"reservation_id": "nope"})
    assert (r.status_code, r.json()) == (
        409,
        refused("reservation_not_found", "no reservation 'nope'"),
    )
    released, sold = new_key(), new_key()
    await call(inv, "reserve", released, lines(("apple", 1)))
    await call(inv, "release", released, lines(("apple", 1)))
    r = await call(inv, "sell", new_key("sell"), {"reservation_id": released})
    message = f"reservation {released!r} is released"
    assert (r.status_code, r.json()) == (409, refused("reservation_released", message))
    await call(inv, "reserve", sold, lines(("apple", 1)))
    assert (await call(inv, "sell", new_key("sell"), {"reservation_id": sold})).status_code == 200
    r = await call(inv, "sell", new_key("sell"), {"reservation_id": sold})
    assert (r.status_code, r.json()) == (
        409,
        refused("reservation_sold", f"reservation {sold!r} is sold"),
    )
    assert (await stock(inv))["apple"] == {"opened": 10, "available": 9, "reserved": 0, "sold": 1}
    report = await audit(inv)
    assert report["ok"], report


async def test_a_release_after_the_sale_is_refused_and_gives_nothing_back(inv) -> None:
    key = new_key()
    await call(inv, "reserve", key, lines(("pear", 2)))
    await call(inv, "sell", new_key("sell"), {"reservation_id": key})
    r = await call(inv, "release", key, lines(("pear", 2)))
    assert (r.status_code, r.json()) == (
        409,
        refused("reservation_sold", f"reservation {key!r} is sold"),
    )
    assert (await stock(inv))["pear"] == {"opened": 5, "available": 3, "reserved": 0, "sold": 2}
    assert (await audit(inv))["ok"]


async def test_stock_tops_up_and_refuses_bad_input(inv) -> None:
    r = await inv.post("/stock", json={"sku": "apple", "qty": 5})
    assert r.json() == {"sku": "apple", "opened": 15, "available": 15, "reserved": 0, "sold": 0}
    for bad in ({"sku": "apple", "qty": 0}, {"sku": "apple"}, {"sku": "a b", "qty": 1}):
        r = await inv.post("/stock", json=bad)
        assert (r.status_code, r.json()["error"]) == (422, "invalid_request")
    r = await inv.post("/stock", json={"sku": "apple", "qty": MAX_STOCK - 15})  # the limit itself
    assert (r.status_code, r.json()["opened"]) == (200, MAX_STOCK)
    r = await inv.post("/stock", json={"sku": "apple", "qty": 1})
    message = f"sku 'apple' would pass {MAX_STOCK}"
    assert (r.status_code, r.json()) == (409, refused("stock_limit_exceeded", message))
    assert (await stock(inv))["apple"]["opened"] == MAX_STOCK


async def test_with_a_token_stock_and_operations_need_it_and_reads_do_not(tmp_path: Path) -> None:
    async for client in _client(tmp_path / "inv.db", TOKEN):
        good = {"Authorization": f"Bearer {TOKEN}"}
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}):
            r = await client.post("/stock", json={"sku": "apple", "qty": 1}, headers=headers)
            assert (r.status_code, r.json()["error"]) == (401, "unauthorized")
        assert (await stock(client)) == {}
        r = await client.post("/stock", json={"sku": "apple", "qty": 1}, headers=good)
        assert r.status_code == 200
        r = await call(client, "reserve", new_key(), lines(("apple", 1)))
        assert r.status_code == 401
        assert (await stock(client))["apple"]["available"] == 1
        assert (await client.get("/health")).status_code == 200


def _tamper(path: Path, sql: str) -> None:
    conn = sqlite3.connect(path)
    conn.execute(sql)
    conn.commit()
    conn.close()


@pytest.mark.parametrize(
    ("sql", "violation"),
    [
        ("UPDATE stock SET available = available + 1 WHERE sku = 'apple'", "!= opened"),
        (
            "UPDATE stock SET reserved = reserved - 1, available = available + 1"
            " WHERE sku = 'apple'",
            "its reservations hold",
        ),
        ("UPDATE reservations SET state = 'released'", "released 0"),
        ("UPDATE reservations SET state = 'sold'", "sold 0"),
        ("DELETE FROM participant_records WHERE operation = 'reserve'", "no applied reserve"),
        (
            "UPDATE participant_records SET key = 'other' WHERE operation = 'reserve'",
            "applied but no reservation",
        ),
    ],
)
async def test_the_audit_finds_books_that_break_an_invariant(
    tmp_path: Path, sql, violation
) -> None:
    path = tmp_path / "inv.db"
    async for client in _client(path, None):
        await client.post("/stock", json={"sku": "apple", "qty": 10})
        await call(client, "reserve", new_key(), lines(("apple", 2)))
        assert (await audit(client))["ok"]
    _tamper(path, sql)
    async for client in _client(path, None):
        report = await audit(client)
        assert not report["ok"]
        assert any(violation in v for v in report["violations"]), report["violations"]


async def test_the_audit_finds_a_reservation_released_and_sold(tmp_path: Path) -> None:
    path = tmp_path / "inv.db"
    key = new_key()
    async for client in _client(path, None):
        await client.post("/stock", json={"sku": "apple", "qty": 10})
        await call(client, "reserve", key, lines(("apple", 2)))
        await call(client, "release", key, lines(("apple", 2)))
    # a forged sale of the released reservation, stock moved as a sale would
    _tamper(
        path,
        "INSERT INTO participant_records VALUES ('sell', 'forged', 'null', 200,"
        f' \'{{"status":"sold","reservation_id":"{key}"}}\', 1, \'now\')',
    )
    async for client in _client(path, None):
        report = await audit(client)
        assert not report["ok"]
        assert any("released 1 and sold 1" in v for v in report["violations"])


async def test_the_request_limits_come_before_any_operation(inv) -> None:
    key = new_key()
    order = lines(("apple", 1))
    rebound = await inv.post(
        "/reserve", json=order, headers={"transaction-id": key, "host": "evil.example"}
    )
    assert (rebound.status_code, rebound.json()["error"]) == (400, "untrusted_host")
    twice = await inv.post(
        "/reserve",
        json=order,
        headers=[("transaction-id", key), ("transaction-id", new_key())],
    )
    assert (twice.status_code, twice.json()["error"]) == (422, "invalid_transaction_id")
    huge = {"lines": [{"sku": "apple" + "x" * 50, "qty": 1}] * 20_000}
    too_large = await call(inv, "reserve", key, huge)
    assert (too_large.status_code, too_large.json()["error"]) == (413, "body_too_large")
    assert (await stock(inv))["apple"]["available"] == 10
    first = await call(inv, "reserve", key, order)  # none of them recorded anything
    assert (first.status_code, first.headers.get("idempotent-replayed")) == (200, None)


async def test_a_reservation_reads_back_with_its_state_and_lines(inv) -> None:
    key = new_key()
    await call(inv, "reserve", key, lines(("apple", 2), ("pear", 1)))
    held = await inv.get(f"/reservations/{key}")
    assert held.json() == {
        "reservation_id": key,
        "state": "reserved",
        "lines": [{"sku": "apple", "qty": 2}, {"sku": "pear", "qty": 1}],
    }
    await call(inv, "sell", new_key("sell"), {"reservation_id": key})
    assert (await inv.get(f"/reservations/{key}")).json()["state"] == "sold"
    missing = await inv.get("/reservations/nope")
    assert (missing.status_code, missing.json()) == (
        404,
        {"error": "reservation_not_found", "message": "no such one"},
    )
