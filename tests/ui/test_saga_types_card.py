"""The dashboard's saga-types card in a real browser: each registered type drawn as its steps in
order, with kind, service, and what undoes or decides each step. Against a real `sagabank serve`
(role all) on loopback; with a token configured, the card's read needs it like every read."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import Launcher

pytestmark = pytest.mark.ui

READ_TOKEN = "r3ad-token"


def test_the_transfer_is_drawn_as_a_compensatable_step_then_its_pivot(
    launch: Launcher, page: Page
) -> None:
    server = launch(role="all", name="all", admin_token="adm1n", read_token=READ_TOKEN)
    page.goto(f"{server.url}/ui")
    card = page.locator("#saga-types")
    expect(card.locator(".message")).to_contain_text("unauthorized")  # closed without a token
    page.fill("#token", READ_TOKEN)
    page.click("#token-form button")
    transfer = card.locator('figure[data-type="transfer"]')
    expect(transfer.locator("figcaption")).to_have_text("transfer v1")
    steps = transfer.locator("li.step")
    expect(steps).to_have_count(2)
    debit, credit = steps.nth(0), steps.nth(1)
    expect(debit).to_have_attribute("data-step", "debit")
    expect(debit.locator(".kind")).to_have_text("compensatable")
    expect(debit.locator(".service")).to_have_text("accounts")
    expect(debit.locator(".compensation")).to_have_text("↩ compensate_debit")
    expect(debit.locator(".settlement")).to_have_count(0)
    expect(credit).to_have_attribute("data-step", "credit")
    expect(credit).to_have_class("step kind-pivot")
    expect(credit.locator(".settlement")).to_have_text("⚖ void_credit")
    expect(credit.locator(".compensation")).to_have_count(0)


def test_the_order_is_drawn_as_three_compensatable_steps_its_pivot_then_two_retriable(
    launch: Launcher, page: Page
) -> None:
    server = launch(role="all", name="all")
    page.goto(f"{server.url}/ui")
    order = page.locator('#saga-types figure[data-type="order"]')
    expect(order.locator("figcaption")).to_have_text("order v1")
    steps = order.locator("li.step")
    expect(steps).to_have_count(6)
    drawn = [
        ("create", "compensatable", "orders", "↩ cancel"),
        ("reserve", "compensatable", "inventory", "↩ release"),
        ("charge", "compensatable", "accounts", "↩ compensate_debit"),
    ]
    for i, (name, kind, service, undo) in enumerate(drawn):
        step = steps.nth(i)
        expect(step).to_have_attribute("data-step", name)
        expect(step.locator(".kind")).to_have_text(kind)
        expect(step.locator(".service")).to_have_text(service)
        expect(step.locator(".compensation")).to_have_text(undo)
    pay = steps.nth(3)
    expect(pay).to_have_class("step kind-pivot")
    expect(pay.locator(".settlement")).to_have_text("⚖ void_credit")
    for i, name in ((4, "sell"), (5, "confirm")):
        expect(steps.nth(i)).to_have_attribute("data-step", name)
        expect(steps.nth(i).locator(".kind")).to_have_text("retriable")
        expect(steps.nth(i).locator(".compensation")).to_have_count(0)
