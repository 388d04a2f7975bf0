"""An operator's recovery of a choreographed deployment, with real processes and RabbitMQ: the
inventory fails every reservation (`SAGABANK_PARTICIPANT_FAULTS`), so an order's reserve message
goes over the delivery limit into the dead-letter queue and the tracker parks the saga
(`failed_needs_attention`, shown by `GET /sagas/order/{id}` with the message named). The server
is stopped, `sagabank sagas retry` (its own process, the server down) records the retry and
redrives the kept message, and the server, started again without the fault, takes the order to
its end; the books check out. The metrics and the dashboard show the parked saga, then its
completion, from the tracker's log and its transitions."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
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

ORDER = {
    "order_id": "o-1",
    "customer": "acc-01",
    "merchant": "acc-02",
    "lines": [{"sku": "apple", "qty": 2}],
    "total": 300,
}


def _env(data: Path, prefix: str, faults: dict[str, Any]) -> dict[str, str]:
    return {
        "SAGABANK_MODE": "choreography",
        "SAGABANK_DATABASE_URL": f"sqlite:///{data / 'sagabank.db'}",
        "SAGABANK_INVENTORY_DATABASE_URL": "",
        "SAGABANK_ORDERS_DATABASE_URL": "",
        "SAGABANK_BROKER_PREFIX": prefix,
        "SAGABANK_BROKER_DELIVERY_LIMIT": "1",
        "SAGABANK_TRACKER_INTERVAL": "0.2",
        "SAGABANK_ADMIN_TOKEN": "",
        "SAGABANK_READ_TOKEN": "",
        "SAGABANK_SERVICE_TOKEN": "service-token",
        "SAGABANK_PARTICIPANT_FAULTS": json.dumps(faults),
        "SAGABANK_TRANSFER_WAIT": "0",
        "SAGABANK_WORKER_ID": "e2e",
    }


def _status_until(url: str, wanted: str, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        view: dict[str, Any] = httpx.get(f"{url}/sagas/order/o-1").json()
        if view["status"] == wanted:
            return view
        assert time.monotonic() < deadline, view
        time.sleep(0.05)


def test_a_dead_lettered_order_is_parked_retried_from_the_cli_and_completed(
    tmp_path: Path,
) -> None:
    require_rabbitmq()
    prefix = f"sagabank-e2e-{uuid.uuid4().hex[:8]}"
    faulty = {"inventory": {"operations": ["reserve"], "rate": 1.0, "mode": "before"}}
    try:
        with ServiceProcess(env=_env(tmp_path, prefix, faulty), role="all") as server:
            auth = {"authorization": "Bearer service-token"}
            stocked = httpx.post(
                f"{server.url}/inventory/stock", json={"sku": "apple", "qty": 5}, headers=auth
            )
            assert stocked.status_code == 200, stocked.text
            started = httpx.post(
                f"{server.url}/sagas/order", json=ORDER, headers={"transaction-id": "o-1"}
            )
            assert started.status_code in (200, 202), started.text
            parked = _status_until(server.url, "failed_needs_attention")
            assert parked["parked_reason"].startswith("dead-lettered message "), parked
            metrics = httpx.get(f"{server.url}/metrics").text
            assert 'sagabank_parked_sagas{saga="order"} 1.0' in metrics
            assert 'sagabank_sagas_started_total{saga="order"} 1.0' in metrics
            assert "sagabank_dead_letters 1.0" in metrics  # counted by the scan that parked it
            assert 'sagabank_outbox_failing{store="inventory"} 0.0' in metrics
            page = httpx.get(f"{server.url}/ui/sagas/order/o-1", headers={"accept": "text/html"})
            assert page.status_code == 200
        retried = subprocess.run(
            [sys.executable, "-m", "repository_after.entrypoints.cli", "sagas", "retry", "o-1"],
            env={**os.environ, **_env(tmp_path, prefix, {})},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert retried.returncode == 0, retried.stdout + retried.stderr
        assert "o-1: reserving" in retried.stdout
        with ServiceProcess(env=_env(tmp_path, prefix, {}), role="all") as server:
            done = _status_until(server.url, "completed")
            metrics = httpx.get(f"{server.url}/metrics").text
            assert 'sagabank_parked_sagas{saga="order"} 0.0' in metrics
            assert 'sagabank_saga_outcomes_total{outcome="completed",saga="order"} 1.0' in metrics
            assert [a["operation"] for a in done["attempts"]][-1] == "confirm"
            audit = httpx.get(f"{server.url}/audit").json()
            assert audit["ok"], audit
            stock = httpx.get(f"{server.url}/inventory/stock").json()["stock"]
            assert [(s["sku"], s["available"], s["sold"]) for s in stock] == [("apple", 3, 2)]
    finally:
        asyncio.run(delete_topology(prefix))
