"""The dashboard of a choreographed deployment, in a real browser: a real
`sagabank serve --mode choreography` process on the local RabbitMQ (a topology prefix of the
test's own, deleted afterwards). An order that completes and one refused for stock (its order
cancelled) are opened on their pages: every attempt is listed in the order it happened, each
with the service that made the call and published its outcome (the reactor stamps the events it
writes into the course; the tracker projects them into the saga log as they are)."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from repository_after.domain.order import ORDER
from repository_after.entrypoints.service_process import ServiceProcess
from tests.choreography_support import delete_topology
from tests.rabbit import require_rabbitmq

pytestmark = [pytest.mark.ui, pytest.mark.timeout(120)]

SERVICE = {step.name: step.service for step in ORDER.steps}


def _env(data: Path, prefix: str) -> dict[str, str]:
    return {
        "SAGABANK_MODE": "choreography",
        "SAGABANK_DATABASE_URL": f"sqlite:///{data / 'sagabank.db'}",
        "SAGABANK_INVENTORY_DATABASE_URL": "",
        "SAGABANK_ORDERS_DATABASE_URL": "",
        "SAGABANK_BROKER_PREFIX": prefix,
        "SAGABANK_ADMIN_TOKEN": "",
        "SAGABANK_READ_TOKEN": "",
        "SAGABANK_SERVICE_TOKEN": "service-token",
        "SAGABANK_PARTICIPANT_FAULTS": "{}",
        "SAGABANK_TRANSFER_WAIT": "10",
    }


def _order(order_id: str, qty: int) -> dict[str, Any]:
    return {
        "order_id": order_id,
        "customer": "acc-01",
        "merchant": "acc-02",
        "lines": [{"sku": "apple", "qty": qty}],
        "total": 150 * qty,
    }


def _at_rest(url: str, saga_id: str, wanted: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while True:
        view: dict[str, Any] = httpx.get(f"{url}/sagas/order/{saga_id}").json()
        if view["status"] == wanted:
            return view
        assert time.monotonic() < deadline, view
        time.sleep(0.05)


def _shows_attempts_with_publishers(page: Page, url: str, view: dict[str, Any]) -> None:
    page.goto(f"{url}/ui/sagas/order/{view['transaction_id']}")
    expect(page.locator("#d-status")).to_have_text(view["status"])
    rows = page.locator("#attempts tbody tr")
    operations = [a["operation"] for a in view["attempts"]]
    expect(rows).to_have_count(len(operations))
    expect(rows.locator("td:nth-child(2)")).to_have_text(operations)
    publishers = [SERVICE[a["step"]] for a in view["attempts"]]
    expect(rows.locator("td.publisher")).to_have_text(publishers)
    for step, service in {a["step"]: SERVICE[a["step"]] for a in view["attempts"]}.items():
        expect(page.locator(f'#timeline li[data-step="{step}"] .tl-attempts')).to_contain_text(
            re.compile(f"by {service}")
        )


def test_a_choreographed_saga_shows_its_attempts_in_order_with_their_publishers(
    page: Page, screenshot: Callable[[str], Path], tmp_path: Path
) -> None:
    require_rabbitmq()
    prefix = f"sagabank-ui-{uuid.uuid4().hex[:8]}"
    try:
        with ServiceProcess(env=_env(tmp_path, prefix), role="all") as server:
            stocked = httpx.post(
                f"{server.url}/inventory/stock",
                json={"sku": "apple", "qty": 5},
                headers={"authorization": "Bearer service-token"},
            )
            assert stocked.status_code == 200, stocked.text
            for saga_id, qty in (("ui-o-1", 2), ("ui-o-2", 50)):
                started = httpx.post(
                    f"{server.url}/sagas/order",
                    json=_order(saga_id, qty),
                    headers={"transaction-id": saga_id},
                    timeout=15,
                )
                assert started.status_code in (200, 202), started.text
            completed = _at_rest(server.url, "ui-o-1", "completed")
            compensated = _at_rest(server.url, "ui-o-2", "compensated")

            # What the tracker recorded: each attempt names the service that made it.
            for view in (completed, compensated):
                assert [a["publisher"] for a in view["attempts"]] == [
                    SERVICE[a["step"]] for a in view["attempts"]
                ]
            assert [a["operation"] for a in compensated["attempts"]][-1] == "cancel"

            _shows_attempts_with_publishers(page, server.url, completed)
            screenshot("choreography-completed-order")
            _shows_attempts_with_publishers(page, server.url, compensated)
            screenshot("choreography-compensated-order")
    finally:  # Playwright's sync API runs a loop in this thread: delete from another one
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, delete_topology(prefix)).result()
