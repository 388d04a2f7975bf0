"""Against a service whose every `/credit` is applied and then answered 500 (a lost response).

The caller cannot tell "failed" from "happened"; the contract must let it find out and retry
safely. This is exactly where the naive implementation creates money.
"""

from __future__ import annotations

import pytest

from tests.blackbox.support import Bank, error_code, new_tx

pytestmark = pytest.mark.blackbox


def test_a_credit_whose_response_was_lost_is_reported_by_void_credit_as_already_applied(
    faulty_bank: Bank,
) -> None:
    account = faulty_bank.open(10_000)
    start = faulty_bank.balance(account)
    tx = new_tx()

    lost = faulty_bank.credit(tx, account, 500)
    void = faulty_bank.call("void_credit", tx, account, 500)

    assert lost.status_code == 500
    assert error_code(lost) == "injected_fault"
    assert void.status_code == 200, void.text
    assert void.json()["status"] == "already_applied"
    assert faulty_bank.balance(account) == start + 500


def test_retrying_a_credit_whose_response_was_lost_does_not_apply_it_twice(
    faulty_bank: Bank,
) -> None:
    account = faulty_bank.open(10_000)
    start = faulty_bank.balance(account)
    total = faulty_bank.total()
    tx = new_tx()

    for _ in range(3):
        assert faulty_bank.credit(tx, account, 400).status_code == 500

    assert faulty_bank.balance(account) == start + 400
    assert faulty_bank.total() == total + 400
