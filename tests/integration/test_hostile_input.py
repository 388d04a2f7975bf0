"""Hostile input, table-driven: every case is a clear 4xx JSON error and the books do not move."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

TX = {"transaction-id": "hostile-1"}
GOOD = {"account_id": "acc-01", "amount": 10}

CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "missing transaction-id": ("/debit", {"json": GOOD}),
    "empty transaction-id": ("/debit", {"json": GOOD, "headers": {"transaction-id": ""}}),
    "10,000-character transaction-id": (
        "/debit",
        {"json": GOOD, "headers": {"transaction-id": "x" * 10_000}},
    ),
    "non-ASCII transaction-id": (
        "/credit",
        {"json": GOOD, "headers": {"transaction-id": "tx-ü".encode()}},
    ),
    "amount 0": ("/debit", {"json": {**GOOD, "amount": 0}, "headers": TX}),
    "amount -1": ("/credit", {"json": {**GOOD, "amount": -1}, "headers": TX}),
    "amount 1.5": ("/debit", {"json": {**GOOD, "amount": 1.5}, "headers": TX}),
    'amount "10"': ("/debit", {"json": {**GOOD, "amount": "10"}, "headers": TX}),
    "amount true": ("/credit", {"json": {**GOOD, "amount": True}, "headers": TX}),
    "amount 10^30": ("/credit", {"json": {**GOOD, "amount": 10**30}, "headers": TX}),
    "unknown field": ("/debit", {"json": {**GOOD, "memo": "hi"}, "headers": TX}),
    "unknown account": (
        "/debit",
        {"json": {**GOOD, "account_id": "ghost"}, "headers": {"transaction-id": "hostile-ghost"}},
    ),
    "body of 5 MB": (
        "/credit",
        {
            "content": b'{"account_id":"' + b"a" * 5_000_000 + b'"}',
            "headers": {**TX, "content-type": "application/json"},
        },
    ),
    "malformed JSON": (
        "/debit",
        {
            "content": b'{"account_id": "acc-01", "amount": ',
            "headers": {**TX, "content-type": "application/json"},
        },
    ),
    "JSON array body": ("/debit", {"json": [GOOD], "headers": TX}),
    "empty body": ("/debit", {"headers": TX}),
    "compensate with a 10^30 amount": (
        "/compensate_debit",
        {"json": {"amount": 10**30}, "headers": TX},
    ),
    "negative opening balance": (
        "/accounts",
        {"json": {"account_id": "acc-01", "initial_balance": -5}},
    ),
    "header block of 20 kB": ("/debit", {"json": GOOD, "headers": {**TX, "x-junk": "j" * 20_000}}),
}


async def chunks() -> AsyncIterator[bytes]:
    yield b'{"account_id": "acc-01", "amount": 1, "pad": "'
    for _ in range(100):
        yield b"p" * 1024
    yield b'"}'


async def books(api: httpx.AsyncClient) -> dict[str, Any]:
    report = (await api.get("/audit")).json()
    accounts = (await api.get("/accounts")).json()
    return {"audit": report, "accounts": accounts}


@pytest.fixture
async def seeded(api: httpx.AsyncClient) -> httpx.AsyncClient:
    await api.post("/accounts", json={"account_id": "acc-01", "initial_balance": 1000})
    return api


@pytest.mark.parametrize("case", CASES)
async def test_hostile_input_is_a_clear_4xx_and_changes_nothing(seeded, case: str) -> None:
    path, kwargs = CASES[case]
    before = await books(seeded)
    r = await seeded.post(path, **kwargs)
    assert 400 <= r.status_code < 500, (case, r.status_code, r.text[:200])
    body = r.json()
    assert isinstance(body["error"], str)
    assert body["error"]
    assert isinstance(body["message"], str)
    assert "Traceback" not in r.text
    assert "sqlite" not in r.text.lower()
    assert len(r.content) < 4096, "errors must not echo huge inputs back"
    after = await books(seeded)
    if case == "unknown account":  # a recorded business refusal: still no money moved
        assert after["accounts"] == before["accounts"]
    else:
        assert after == before


async def test_a_chunked_body_over_the_limit_is_413(seeded) -> None:
    before = await books(seeded)
    r = await seeded.post("/debit", content=chunks(), headers=TX)
    assert r.status_code == 413
    assert r.json()["error"] == "body_too_large"
    assert await books(seeded) == before


async def test_limits_are_named_in_the_errors(seeded) -> None:
    big = await seeded.post("/debit", content=b"x" * 70_000, headers=TX)
    assert (big.status_code, big.json()["error"]) == (413, "body_too_large")
    wide = await seeded.post("/debit", json=GOOD, headers={**TX, "x-junk": "j" * 20_000})
    assert (wide.status_code, wide.json()["error"]) == (431, "headers_too_large")
