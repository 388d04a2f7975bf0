"""Every saga type on the dashboard, in a real browser against a real `sagabank serve` (role
`all`, hosting the inventory and orders services) on loopback: an order and a transfer started
over HTTP show in one list, each as its type reads (a transfer's route and amount; an order's
id, customer, merchant, total and lines), counted under its own type; the list filters by type;
an order's page draws the timeline of its definition's six steps with each attempt, for an
order that completed and for one refused for want of stock and compensated."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.integration.observability_support import ORDER
from tests.ui.conftest import Launcher

pytestmark = pytest.mark.ui

STEPS = ["create", "reserve", "charge", "pay", "sell", "confirm"]
TIMES = "\N{MULTIPLICATION SIGN}"  # an order line reads "2 TIMES apple"


def start(url: str, path: str, tx_id: str, body: dict[str, object]) -> str:
    answer = httpx.post(f"{url}{path}", json=body, headers={"transaction-id": tx_id}, timeout=30)
    assert answer.status_code == 200, answer.text
    status: str = answer.json()["status"]
    return status


def test_an_order_and_a_transfer_are_each_drawn_as_their_type(
    launch: Launcher, page: Page, screenshot: Callable[[str], Path]
) -> None:
    server = launch(role="all", name="all", transfer_wait=30)
    stocked = httpx.post(f"{server.url}/inventory/stock", json={"sku": "apple", "qty": 5})
    assert stocked.status_code == 200, stocked.text
    assert start(server.url, "/sagas/order", "ord-1", ORDER) == "completed"
    transfer = {"source": "acc-01", "target": "acc-02", "amount": 250}
    assert start(server.url, "/transfers", "tr-1", transfer) == "completed"
    too_many = {**ORDER, "order_id": "o-2", "lines": [{"sku": "apple", "qty": 50}]}
    assert start(server.url, "/sagas/order", "ord-2", too_many) == "compensated"

    page.goto(f"{server.url}/ui")
    rows = page.locator("#sagas tbody tr")
    expect(rows).to_have_count(3)
    order = page.locator('#sagas tr[data-id="ord-1"]')
    expect(order.locator("td.type")).to_have_text("order")
    summary = f"o-1: acc-01 → acc-02 · 3.00 · 2 {TIMES} apple"
    expect(order.locator("td.summary")).to_have_text(summary)
    expect(order.locator(".state")).to_have_text("completed")
    moved = page.locator('#sagas tr[data-id="tr-1"]')
    expect(moved.locator("td.type")).to_have_text("transfer")
    expect(moved.locator("td.summary")).to_have_text("acc-01 → acc-02 · 2.50")
    counts = page.locator("#counts")
    expect(counts.locator('[data-type="order"] button[data-state="completed"]')).to_have_text(
        "completed 1"
    )
    expect(counts.locator('[data-type="order"] button[data-state="compensated"]')).to_have_text(
        "compensated 1"
    )
    expect(counts.locator('[data-type="transfer"] button[data-state="completed"]')).to_have_text(
        "completed 1"
    )

    screenshot("types-1-list")

    page.select_option("#type-filter", "order")
    expect(rows).to_have_count(2)
    expect(page.locator("#sagas tbody td.type")).to_have_text(["order", "order"])
    page.select_option("#state-filter", "compensated")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-id", "ord-2")
    page.select_option("#type-filter", "")
    expect(rows).to_have_count(3)

    # The completed order's page: its parameters, and each of its six steps done by one attempt.
    order.locator("a").click()
    expect(page).to_have_url(re.compile("/ui/sagas/order/ord-1$"))
    expect(page.locator("#d-type")).to_have_text("order")
    expect(page.locator("#d-status")).to_have_text("completed")
    expect(page.locator("#d-version")).to_have_text("order v1")
    expect(page.locator('#d-params dd[data-param="total"]')).to_have_text("3.00")
    expect(page.locator('#d-params dd[data-param="lines"]')).to_have_text(f"2 {TIMES} apple")
    steps = page.locator("#timeline > li")
    expect(steps).to_have_count(6)
    for i, name in enumerate(STEPS):
        expect(steps.nth(i)).to_have_attribute("data-step", name)
        expect(steps.nth(i)).to_have_attribute("data-state", "done")
        attempts = steps.nth(i).locator(".tl-attempt")
        expect(attempts).to_have_count(1)
        expect(attempts.first).to_have_attribute("data-outcome", "succeeded")
    expect(steps.nth(3)).to_have_class(re.compile(r"\bkind-pivot\b"))
    expect(steps.nth(2).locator(".tl-attempt")).to_contain_text("action · debit · #1 · succeeded")
    screenshot("types-2-order-timeline")

    # The refused order (from the list, as an operator goes): reserve refused, create undone,
    # nothing after them reached.
    page.go_back()
    expect(page.locator("#list-view")).to_be_visible()
    page.locator('#sagas tr[data-id="ord-2"] a').click()
    expect(page.locator("#d-status")).to_have_text("compensated")
    expect(steps).to_have_count(6)
    states = ["compensated", "rejected", *["not reached"] * 4]
    for i, state in enumerate(states):
        expect(steps.nth(i)).to_have_attribute("data-state", state)
    create = steps.nth(0).locator(".tl-attempt")
    expect(create).to_have_count(2)
    expect(create.nth(1)).to_have_attribute("data-role", "compensation")
    expect(create.nth(1)).to_contain_text("cancel")
    expect(steps.nth(1).locator(".tl-attempt")).to_have_attribute("data-outcome", "rejected")
    screenshot("types-3-refused-order-timeline")
