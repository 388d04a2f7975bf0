"""Choreography split in two processes, as orchestration splits: `--role accounts` (the account
service with the inventory and orders services, each on its own database) and `--role
orchestrator` (the HTTP API and the tracker, with the saga log on another database). They meet
at RabbitMQ only: no URL of one is given to the other. A transfer and an order complete, the
books move as they say."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from repository_after.entrypoints.service_process import ServiceProcess
from tests.choreography_support import delete_topology
from tests.rabbit import require_rabbitmq

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def _env(database: Path, prefix: str) -> dict[str, str]:
    return {
        "SAGABANK_MODE": "choreography",
        "SAGABANK_DATABASE_URL": f"sqlite:///{database}",
        "SAGABANK_INVENTORY_DATABASE_URL": "",
        "SAGABANK_ORDERS_DATABASE_URL": "",
        "SAGABANK_BROKER_PREFIX": prefix,
        "SAGABANK_ACCOUNTS_URL": "",
        "SAGABANK_SERVICES": "{}",
        "SAGABANK_ADMIN_TOKEN": "",
        "SAGABANK_READ_TOKEN": "",
        "SAGABANK_SERVICE_TOKEN": "",
        "SAGABANK_PARTICIPANT_FAULTS": "{}",
    }


def _settled(url: str, path: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        view: dict[str, Any] = httpx.get(f"{url}{path}").json()
        if view["status"] in ("completed", "compensated", "rejected", "failed_needs_attention"):
            return view
        assert time.monotonic() < deadline, view
        time.sleep(0.05)


def test_the_account_and_orchestrator_roles_meet_at_the_broker_only(tmp_path: Path) -> None:
    require_rabbitmq()
    prefix = f"sagabank-e2e-{uuid.uuid4().hex[:8]}"
    try:
        accounts = ServiceProcess(env=_env(tmp_path / "books.db", prefix), role="accounts")
        sagas = ServiceProcess(env=_env(tmp_path / "sagas.db", prefix), role="orchestrator")
        with accounts, sagas:
            stocked = httpx.post(f"{accounts.url}/inventory/stock", json={"sku": "pear", "qty": 3})
            assert stocked.status_code == 200, stocked.text
            transfer = {"source": "acc-01", "target": "acc-02", "amount": 700}
            httpx.post(f"{sagas.url}/transfers", json=transfer, headers={"transaction-id": "t-1"})
            order = {
                "order_id": "o-1",
                "customer": "acc-03",
                "merchant": "acc-04",
                "lines": [{"sku": "pear", "qty": 2}],
                "total": 250,
            }
            httpx.post(f"{sagas.url}/sagas/order", json=order, headers={"transaction-id": "o-1"})
            assert _settled(sagas.url, "/transfers/t-1")["status"] == "completed"
            assert _settled(sagas.url, "/sagas/order/o-1")["status"] == "completed"
            listed = httpx.get(f"{accounts.url}/accounts").json()
            balances = {a["account_id"]: a["balance"] for a in listed["accounts"]}
            assert (balances["acc-01"], balances["acc-02"]) == (99_300, 100_700)
            assert (balances["acc-03"], balances["acc-04"]) == (99_750, 100_250)
            assert httpx.get(f"{sagas.url}/accounts").status_code == 404  # no books there
            assert httpx.get(f"{accounts.url}/audit").json()["ok"]
    finally:
        asyncio.run(delete_topology(prefix))
