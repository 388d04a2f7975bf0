"""Each participant as its own process: `sagabank serve --role inventory` and `--role orders`
(real processes on loopback via the `launch` fixture), each on its own SQLite file derived from
`SAGABANK_DATABASE_URL`, its operations guarded by `SAGABANK_SERVICE_TOKEN`, and an answer that
survives a restart of the process."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.conftest import Launcher

TOKEN = "pr0cess-t0ken"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_the_inventory_runs_as_its_own_process_on_its_own_file(
    launch: Launcher, tmp_path: Path
) -> None:
    inventory = launch(role="inventory", name="inv", service_token=TOKEN)
    with httpx.Client(base_url=inventory.url, timeout=10) as client:
        assert client.get("/health").json() == {"status": "ok", "service": "inventory"}
        refused = client.post("/stock", json={"sku": "apple", "qty": 3})
        assert (refused.status_code, refused.json()["error"]) == (401, "unauthorized")
        assert client.post("/stock", json={"sku": "apple", "qty": 3}, headers=AUTH).is_success
        body = {"lines": [{"sku": "apple", "qty": 2}]}
        headers = {**AUTH, "transaction-id": "s-1:reserve"}
        first = client.post("/reserve", json=body, headers=headers)
        assert first.json()["status"] == "reserved"
        assert client.get("/accounts").status_code == 404  # no account service here
    assert (tmp_path / "inv-inventory.db").exists()
    assert not (tmp_path / "inv.db").exists()  # nothing else opened
    inventory.stop()
    again = launch(role="inventory", name="inv", service_token=TOKEN)
    with httpx.Client(base_url=again.url, timeout=10) as client:
        replay = client.post("/reserve", json=body, headers=headers)
        assert (replay.content, replay.headers["idempotent-replayed"]) == (first.content, "true")
        assert client.get("/audit").json()["ok"]


def test_the_orders_service_runs_as_its_own_process_on_its_own_file(
    launch: Launcher, tmp_path: Path
) -> None:
    orders = launch(role="orders", name="ord")
    order = {
        "order_id": "o-1",
        "customer": "acc-01",
        "merchant": "acc-02",
        "lines": [{"sku": "apple", "qty": 1}],
        "total": 100,
    }
    with httpx.Client(base_url=orders.url, timeout=10) as client:
        assert client.get("/health").json() == {"status": "ok", "service": "orders"}
        made = client.post("/create", json=order, headers={"transaction-id": "s-1:create"})
        assert made.json() == {"status": "created", "order_id": "o-1", "state": "pending"}
        assert client.get("/orders/o-1").json()["state"] == "pending"
        assert client.get("/audit").json()["ok"]
    assert (tmp_path / "ord-orders.db").exists()
    assert not (tmp_path / "ord.db").exists()
