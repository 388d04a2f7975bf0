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
