"""The dashboard in a real browser, against real `sagabank serve` processes on loopback.

The orchestrator runs alone first, pointed at an account service that is not up yet: transfers
started then cannot learn their debit's outcome, nor settle it, so they park for real. The
account service then comes up; the operator watches new transfers arrive and finish live (no
reload), opens a parked transfer's history, retries it (after giving the admin token) and
resolves the other one with a note.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from repository_after.entrypoints.service_process import free_port
from tests.ui.conftest import Launcher, wait_for_log_line

pytestmark = pytest.mark.ui

TOKEN = "s3cret-token"
#: The reads are closed when a token is configured: the operator first types the read token,
#: which opens no operator action.
READ_TOKEN = "r3ad-token"


def transfer(url: str, tx_id: str, amount: int = 100) -> dict[str, object]:
    answer = httpx.post(
        f"{url}/transfers",
        headers={"transaction-id": tx_id},
        json={"source": "acc-01", "target": "acc-02", "amount": amount},
        timeout=15.0,
    )
    body: dict[str, object] = answer.json()
    return body


def test_operator_watches_transfers_live_and_operates_parked_sagas(
    launch: Launcher, page: Page, screenshot: Callable[[str], Path], tmp_path: Path
) -> None:
    accounts_port = free_port()
    orchestrator = launch(
        role="orchestrator",
        name="orchestrator",
        log_level="INFO",  # the page shows the saga's log lines; the test waits for "recovery:"
        accounts_url=f"http://127.0.0.1:{accounts_port}",
        admin_token=TOKEN,
        read_token=READ_TOKEN,
        retry_attempts=1,
        settle_attempts=2,
        retry_initial_backoff=0.01,
        retry_max_backoff=0.02,
    )
    page.goto(f"{orchestrator.url}/ui")
    page.fill("#token", READ_TOKEN)
    page.click("#token-form button")
    expect(page.locator("#live")).to_have_text("live")
    page.evaluate("window.__sameDocument = true")
    expect(page.locator("#conservation")).to_have_text("account service unreachable")

    # A transfer started from the page's form parks: the account service is down.
    page.fill("#transfer-form [name=amount]", "250")
    page.click("#transfer-form button")
    expect(page.locator("#transfer-result")).to_contain_text("failed_needs_attention")
    assert transfer(orchestrator.url, "ui-park-2")["status"] == "failed_needs_attention"
    parked_rows = page.locator("#parked tbody tr")
    expect(parked_rows).to_have_count(2)
    form_id = page.locator("#parked tbody tr").last.get_attribute("data-id")
    assert form_id is not None
    assert form_id.startswith("ui-")
    screenshot("1-parked-while-accounts-down")

    launch(role="accounts", name="accounts", port=accounts_port, demo_accounts=4, log_level="INFO")
    # The orchestrator's start-up recovery runs once the account service answers; transfers
    # start after it (it claims sagas leased under the orchestrator's own id).
    wait_for_log_line(tmp_path / "orchestrator.log", "recovery:")
    for i in range(3):
        assert transfer(orchestrator.url, f"ui-live-{i}")["status"] == "completed"
    # Rows appear and reach `completed` without a reload; the feed shows the live transitions.
    for i in range(3):
        row = page.locator(f'#sagas tr[data-id="ui-live-{i}"]')
        expect(row.locator(".state")).to_have_text("completed")
    expect(page.locator('#feed li[data-id="ui-live-2"][data-after="crediting"]')).to_have_count(1)
    expect(page.locator('#feed li[data-id="ui-live-2"][data-after="completed"]')).to_have_count(1)
    expect(page.locator("#conservation")).to_have_text("✓ money conserved")
    expect(page.locator("#total-balance")).to_have_text("4,000.00")
    completed = page.locator('#counts [data-type="transfer"] button[data-state="completed"]')
    expect(completed).to_contain_text("3")
    assert page.evaluate("window.__sameDocument") is True
    screenshot("2-live-transfers")

    page.select_option("#state-filter", "completed")
    expect(page.locator("#sagas tbody tr")).to_have_count(3)
    page.select_option("#state-filter", "")
    expect(page.locator("#sagas tbody tr")).to_have_count(5)

    # The parked transfer's history: every attempt, with its outcome and error.
    page.click(f'#parked tr[data-id="{form_id}"] a')
    expect(page).to_have_url(re.compile(f"/ui/sagas/transfer/{form_id}$"))
    expect(page.locator("#list-view")).to_be_hidden()
    expect(page.locator("#d-status")).to_have_text("failed_needs_attention")
    expect(page.locator('#d-params dd[data-param="amount"]')).to_have_text("2.50")
    attempts = page.locator("#attempts tbody tr")
    expect(attempts).to_have_count(3)  # debit once, compensate_debit twice
    expect(attempts.nth(1)).to_contain_text("compensate_debit")
    expect(attempts.nth(1)).to_contain_text("transport: ConnectError")
    expect(page.locator("#logs")).to_contain_text(f"saga transfer {form_id}")
    screenshot("3-parked-history")

    # Retry needs the admin token.
    page.click("#d-retry")
    expect(page.locator("#d-message")).to_contain_text("unauthorized")
    page.fill("#token", TOKEN)
    page.click("#token-form button")
    page.click("#d-retry")
    expect(page.locator("#d-status")).to_have_text("compensated")
    expect(page.locator("#operator-actions")).to_contain_text("operator_retry")
    expect(attempts.last).to_contain_text("nothing_to_compensate")
    screenshot("4-retried")

    # Back to the list: resolve the other parked saga with a note.
    page.click("#detail-view a[data-nav]")
    expect(page.locator("#detail-view")).to_be_hidden()
    row = page.locator('#parked tr[data-id="ui-park-2"]')
    row.locator("input.note").fill("checked the ledger by hand")
    row.locator("button.resolve").click()
    expect(page.locator("#parked-empty")).to_be_visible()
    expect(page.locator('#sagas tr[data-id="ui-park-2"] .state')).to_have_text("resolved")
    resolved = httpx.get(
        f"{orchestrator.url}/transfers/ui-park-2",
        headers={"Authorization": f"Bearer {READ_TOKEN}"},
        timeout=5.0,
    ).json()
    assert resolved["status"] == "resolved"
    assert resolved["operator_actions"][0]["note"] == "checked the ledger by hand"
    assert page.evaluate("window.__sameDocument") is True
    screenshot("5-resolved")
