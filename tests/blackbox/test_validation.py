"""Malformed requests are refused with 422 and a machine-readable code, and move no money."""

from __future__ import annotations

from typing import Any

import pytest

from tests.blackbox.support import Bank, error_code, new_tx

pytestmark = pytest.mark.blackbox


@pytest.mark.parametrize("operation", ["debit", "credit"])
def test_a_request_without_a_transaction_id_header_is_refused_with_422(
    bank: Bank, operation: str
) -> None:
    account = bank.open(10_000)
    start = bank.balance(account)

    r = bank.call(operation, None, account, 100)

    assert r.status_code == 422, r.text
    assert error_code(r) == "invalid_transaction_id"
    assert bank.balance(account) == start


@pytest.mark.parametrize(
    "transaction_id",
    ["", "has space", "x" * 129, "semi;colon", "slash/y"],
    ids=["empty", "space", "too-long", "semicolon", "slash"],
)
def test_a_malformed_transaction_id_is_refused_with_422(bank: Bank, transaction_id: str) -> None:
    account = bank.open(10_000)
    start = bank.balance(account)

    r = bank.debit(transaction_id, account, 100)

    assert r.status_code == 422, r.text
    assert error_code(r) == "invalid_transaction_id"
    assert bank.balance(account) == start


@pytest.mark.parametrize(
    "amount",
    [10.5, 100.0, "100", -5, 0, True, None, 10**12 + 1],
    ids=["fraction", "float", "string", "negative", "zero", "bool", "null", "too-large"],
)
@pytest.mark.parametrize("operation", ["debit", "credit"])
def test_an_amount_that_is_not_a_positive_integer_is_refused_with_422(
    bank: Bank, operation: str, amount: Any
) -> None:
    account = bank.open(10_000)
    start = bank.balance(account)

    r = bank.call(operation, new_tx(), account, amount)

    assert r.status_code == 422, r.text
    assert error_code(r) == "invalid_request"
    assert bank.balance(account) == start


def test_a_body_without_an_account_is_refused_with_422(bank: Bank) -> None:
    total = bank.total()

    r = bank.client.post("/debit", headers={"transaction-id": new_tx()}, json={"amount": 100})

    assert r.status_code == 422, r.text
    assert error_code(r) == "invalid_request"
    assert bank.total() == total
