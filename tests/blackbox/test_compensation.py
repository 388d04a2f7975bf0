"""Settlements: a compensated debit is reversed once; a late debit or credit cannot slip in."""

from __future__ import annotations

import pytest

from tests.blackbox.support import Bank, error_code, new_tx

pytestmark = pytest.mark.blackbox


def test_compensating_a_debit_restores_the_balance_exactly_once(bank: Bank) -> None:
    account = bank.open(10_000)
    start = bank.balance(account)
    tx = new_tx()
    assert bank.debit(tx, account, 3_000).status_code == 200

    first = bank.call("compensate_debit", tx, account, 3_000)
    second = bank.call("compensate_debit", tx, account, 3_000)

    assert first.status_code == 200, first.text
    assert first.json()["status"] == "compensated"
    assert first.json()["balance_after"] == start
    assert (second.status_code, second.json()) == (200, first.json())
    assert bank.balance(account) == start


def test_a_debit_arriving_after_its_compensation_is_refused_and_changes_nothing(
    bank: Bank,
) -> None:
    account = bank.open(10_000)
    start = bank.balance(account)
    tx = new_tx()

    compensation = bank.call("compensate_debit", tx, account, 2_000)
    late = bank.debit(tx, account, 2_000)

    assert compensation.status_code == 200, compensation.text
    assert compensation.json()["status"] == "nothing_to_compensate"
    assert late.status_code == 409, late.text
    assert error_code(late) == "transaction_compensated"
    assert bank.balance(account) == start


def test_a_credit_arriving_after_its_void_is_refused_and_changes_nothing(bank: Bank) -> None:
    account = bank.open(10_000)
    start = bank.balance(account)
    tx = new_tx()

    void = bank.call("void_credit", tx, account, 2_000)
    late = bank.credit(tx, account, 2_000)

    assert void.status_code == 200, void.text
    assert void.json()["status"] == "voided"
    assert late.status_code == 409, late.text
    assert error_code(late) == "transaction_voided"
    assert bank.balance(account) == start


def test_voiding_a_credit_that_landed_reports_already_applied_and_keeps_it(bank: Bank) -> None:
    account = bank.open(10_000)
    start = bank.balance(account)
    tx = new_tx()
    assert bank.credit(tx, account, 900).status_code == 200

    void = bank.call("void_credit", tx, account, 900)

    assert void.status_code == 200, void.text
    assert void.json()["status"] == "already_applied"
    assert bank.balance(account) == start + 900
