"""The dashboard's money card in a real browser: red, naming the orphan, when a debit no saga
owns sits in the books of a role `all` server (its audit is reconciled with the saga log)."""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import Launcher

pytestmark = pytest.mark.ui


def test_the_money_card_is_red_and_names_the_orphan(launch: Launcher, page: Page) -> None:
    service = launch(role="all", name="all", demo_accounts=2)
    page.goto(f"{service.url}/ui")
    expect(page.locator("#conservation")).to_have_text("✓ money conserved")
    debited = httpx.post(
        f"{service.url}/debit",
        json={"account_id": "acc-01", "amount": 25},
        headers={"transaction-id": "hand-made"},
    )
    assert debited.status_code == 200, debited.text
    page.reload()
    card = page.locator("#conservation")
    expect(card).to_contain_text("orphaned money (no saga owns it): hand-made")
    expect(card).to_have_class(re.compile(r"\bbad\b"))
    expect(page.locator("#in-flight")).to_have_text("0")
