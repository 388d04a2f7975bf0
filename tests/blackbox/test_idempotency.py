"""A transaction id makes an operation happen once, however often (or concurrently) it arrives."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.blackbox.support import Bank, error_code, new_tx

pytestmark = pytest.mark.blackbox


def test_replaying_a_debit_returns_the_first_response_and_applies_once(bank: Bank) -> None:
    account = bank.open(10_000)
    start = bank.balance(account)
    tx = new_tx()

    first = bank.debit(tx, account, 1_000)
    second = bank.debit(tx, account, 1_000)

    assert first.status_code == 200, first.text
    assert (second.status_code, second.json()) == (first.status_code, first.json())
    assert second.headers.get("idempotent-replayed") == "true"
    assert bank.balance(account) == start - 1_000


def test_replaying_a_credit_returns_the_first_response_and_applies_once(bank: Bank) -> None:
    account = bank.open(10_000)
    start = bank.balance(account)
    tx = new_tx()

    responses = [bank.credit(tx, account, 750) for _ in range(3)]

    assert responses[0].status_code == 200, responses[0].text
    assert all(r.status_code == 200 for r in responses)
    assert all(r.json() == responses[0].json() for r in responses)
    assert bank.balance(account) == start + 750


async def test_twenty_concurrent_duplicate_debits_apply_once(bank: Bank, service_url: str) -> None:
    account = bank.open(50_000)
    start = bank.balance(account)
    tx = new_tx()
    body = {"account_id": account, "amount": 100}

    async with httpx.AsyncClient(base_url=service_url, timeout=20.0) as client:
        responses = await asyncio.gather(
            *(client.post("/debit", headers={"transaction-id": tx}, json=body) for _ in range(20))
        )

    assert [r.status_code for r in responses] == [200] * 20
    assert len({r.text for r in responses}) == 1, "duplicates answered differently"
    assert responses[0].json()["balance_after"] == start - 100
    assert bank.balance(account) == start - 100


def test_reusing_a_transaction_id_for_a_different_debit_is_refused_with_422(bank: Bank) -> None:
    account = bank.open(10_000)
    start = bank.balance(account)
    tx = new_tx()

    assert bank.debit(tx, account, 100).status_code == 200
    r = bank.debit(tx, account, 200)

    assert r.status_code == 422, r.text
    assert error_code(r) == "idempotency_key_reused"
    assert bank.balance(account) == start - 100


def test_a_refused_debit_retried_after_funds_arrive_gets_the_same_refusal(bank: Bank) -> None:
    account = bank.open(1_000)
    start = bank.balance(account)
    tx = new_tx()

    first = bank.debit(tx, account, start + 500)
    assert bank.credit(new_tx(), account, 1_000).status_code == 200
    retry = bank.debit(tx, account, start + 500)

    assert first.status_code == 409, first.text
    assert (retry.status_code, retry.json()) == (first.status_code, first.json())
    assert bank.balance(account) == start + 1_000
