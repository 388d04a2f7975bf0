"""The order saga in the default deployment: one `sagabank serve` process (role `all`, served
by uvicorn on loopback) hosts the account service, the inventory under `/inventory` and the
orders service under `/orders`, each on its own SQLite file beside the account store's, and its
orchestrator calls them over HTTP with no setting at all. `POST /sagas/order` refuses a bad
order with 422 before anything is logged or created."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.observability_support import ORDER, served_all


@pytest.fixture
async def sagabank(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """Role `all` on a free loopback port; the client talks to it over HTTP."""
    async with served_all(tmp_path) as client:
        yield client


async def test_a_default_process_hosts_the_participants_and_runs_an_order(
    sagabank: httpx.AsyncClient, tmp_path: Path
) -> None:
    stocked = await sagabank.post("/inventory/stock", json={"sku": "apple", "qty": 5})
    assert stocked.status_code == 200, stocked.text
    # a hosted participant's refusal is its own 4xx here too, not a 500
    too_much = await sagabank.post("/inventory/stock", json={"sku": "apple", "qty": 10**12})
    assert (too_much.status_code, too_much.json()["error"]) == (409, "stock_limit_exceeded")
    done = await sagabank.post("/sagas/order", json=ORDER, headers={"transaction-id": "s-1"})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "completed"
    assert (await sagabank.get("/orders/orders/o-1")).json()["state"] == "confirmed"
    apple = (await sagabank.get("/inventory/stock")).json()["stock"][0]
    assert (apple["available"], apple["sold"]) == (3, 2)
    accounts = (await sagabank.get("/accounts")).json()["accounts"]
    assert {a["account_id"]: a["balance"] for a in accounts} == {"acc-01": 700, "acc-02": 1300}
    assert (await sagabank.get("/inventory/audit")).json()["ok"]
    assert (await sagabank.get("/orders/audit")).json()["ok"]
    # each participant on its own file, beside the account store's
    assert {p.name for p in tmp_path.glob("sagabank*.db")} == {
        "sagabank.db",
        "sagabank-inventory.db",
        "sagabank-orders.db",
        "sagabank-pupils.db",
        "sagabank-classes.db",
    }


@pytest.mark.parametrize(
    "changes",
    [
        {"total": "300"},
        {"total": 0},
        {"lines": []},
        {"lines": [{"sku": "apple", "qty": 1}, {"sku": "apple", "qty": 1}]},
        {"lines": [{"sku": "apple", "qty": -1}]},
        {"order_id": "bad id"},
        {"memo": "x"},
    ],
    ids=["total-text", "total-zero", "no-lines", "same-sku", "negative-qty", "bad-id", "extra"],
)
async def test_a_bad_order_is_refused_with_422_and_nothing_is_logged_or_created(
    sagabank: httpx.AsyncClient, changes: dict[str, Any]
) -> None:
    refused = await sagabank.post(
        "/sagas/order", json={**ORDER, **changes}, headers={"transaction-id": "s-2"}
    )
    assert (refused.status_code, refused.json()["error"]) == (422, "invalid_request")
    assert (await sagabank.get("/sagas/order/s-2")).status_code == 404
    assert (await sagabank.get("/sagas")).json()["sagas"] == []  # every saga type
    assert (await sagabank.get("/orders/orders")).json()["orders"] == []


async def test_an_order_paying_its_own_customer_is_refused_by_the_types_rule(
    sagabank: httpx.AsyncClient,
) -> None:
    refused = await sagabank.post("/sagas/order", json={**ORDER, "merchant": "acc-01"})
    assert (refused.status_code, refused.json()["error"]) == (422, "same_account")
    assert (await sagabank.get("/sagas")).json()["sagas"] == []


async def test_the_hosted_participants_take_whole_orders_the_account_routes_do_not(
    sagabank: httpx.AsyncClient,
) -> None:
    # 50 lines of 64-character SKUs, 128 times over: a full batch of the largest orders
    line = [{"sku": f"{i:02d}" + "s" * 62, "qty": 1} for i in range(50)]
    items = [
        {"operation": "reserve", "transaction_id": f"s-{n}:reserve", "lines": line}
        for n in range(128)
    ]
    body = {"operations": items}
    batch = await sagabank.post("/inventory/batch", json=body)
    assert batch.status_code == 200, batch.text[:200]  # answered (every item out of stock)
    assert {r["body"]["error"] for r in batch.json()["results"]} == {"out_of_stock"}
    too_big = await sagabank.post("/batch", json=body)  # the account service's batch: 64 KiB
    assert (too_big.status_code, too_big.json()["error"]) == (413, "body_too_large")
