"""Debits and credits move money by exactly the amount, refuse what they cannot do, and say why."""

from __future__ import annotations

import httpx
import pytest

from tests.blackbox.support import Bank, error_code, new_tx

pytestmark = pytest.mark.blackbox


def test_the_service_reports_itself_healthy(client: httpx.Client) -> None:
    r = client.get("/health")

    assert r.status_code == 200
    assert r.json()["status"] == "ok"


def test_a_debit_lowers_the_balance_by_the_amount_and_describes_what_it_did(bank: Bank) -> None:
    account = bank.open(10_000)
    start = bank.balance(account)
    tx = new_tx()

    r = bank.debit(tx, account, 2_500)

    assert r.status_code == 200, r.text
    assert r.json() == {
        "transaction_id": tx,
        "operation": "debit",
        "account_id": account,
        "amount": 2_500,
        "balance_after": start - 2_500,
        "status": "applied",
    }
    assert bank.balance(account) == start - 2_500


def test_a_credit_raises_the_balance_by_the_amount(bank: Bank) -> None:
    account = bank.open(10_000)
    start = bank.balance(account)
    tx = new_tx()

    r = bank.credit(tx, account, 1_234)

    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["operation"], body["status"], body["amount"]) == ("credit", "applied", 1_234)
    assert body["balance_after"] == start + 1_234
    assert bank.balance(account) == start + 1_234


def test_a_debit_the_account_cannot_cover_is_refused_with_409_and_changes_nothing(
    bank: Bank,
) -> None:
    account = bank.open(5_000)
    start = bank.balance(account)
    total = bank.total()

    r = bank.debit(new_tx(), account, start + 1)

    assert r.status_code == 409, r.text
    assert error_code(r) == "insufficient_funds"
    assert bank.balance(account) == start
    assert bank.total() == total


def test_a_debit_of_the_whole_balance_is_allowed_and_leaves_zero(bank: Bank) -> None:
    account = bank.open(5_000)
    start = bank.balance(account)

    r = bank.debit(new_tx(), account, start)

    assert r.status_code == 200, r.text
    assert bank.balance(account) == 0


@pytest.mark.parametrize("operation", ["debit", "credit"])
def test_an_operation_on_an_unknown_account_is_refused_with_404(bank: Bank, operation: str) -> None:
    total = bank.total()

    r = bank.call(operation, new_tx(), "bb-no-such-account", 100)

    assert r.status_code == 404, r.text
    assert error_code(r) == "account_not_found"
    assert bank.total() == total


def test_a_debit_and_a_credit_of_the_same_amount_leave_total_money_unchanged(bank: Bank) -> None:
    source, target = bank.open(20_000), bank.open(20_000)
    source_start, target_start = bank.balance(source), bank.balance(target)
    total = bank.total()
    tx = new_tx()

    assert bank.debit(tx, source, 7_777).status_code == 200
    assert bank.credit(tx, target, 7_777).status_code == 200

    assert bank.total() == total
    assert bank.balance(source) == source_start - 7_777
    assert bank.balance(target) == target_start + 7_777


def test_the_listed_total_is_the_sum_of_the_listed_balances(bank: Bank) -> None:
    bank.open(3_000)

    listing = bank.accounts()

    assert listing["accounts"], "GET /accounts lists no account"
    assert listing["total"] == sum(a["balance"] for a in listing["accounts"])
    for row in listing["accounts"]:
        assert set(row) >= {"account_id", "balance", "opening_balance"}
