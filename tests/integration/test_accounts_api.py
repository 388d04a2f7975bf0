"""The account service over HTTP (ASGITransport) on a real SQLite file: every rule of the issue."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import accounts_settings, asgi_client


def new_id() -> str:
    return f"t-{uuid.uuid4().hex}"


async def open_account(api: httpx.AsyncClient, balance: int, name: str | None = None) -> str:
    account_id = name or f"acc-{uuid.uuid4().hex[:12]}"
    r = await api.post("/accounts", json={"account_id": account_id, "initial_balance": balance})
    assert r.status_code == 201, r.text
    return account_id


async def balance(api: httpx.AsyncClient, account_id: str) -> int:
    r = await api.get(f"/accounts/{account_id}")
    assert r.status_code == 200
    return int(r.json()["balance"])


async def op(
    api: httpx.AsyncClient,
    name: str,
    tx: str,
    account: str | None = None,
    amount: int | None = None,
) -> httpx.Response:
    body = None if account is None else {"account_id": account, "amount": amount}
    return await api.post(f"/{name}", json=body, headers={"transaction-id": tx})


async def test_debit_lowers_the_balance_and_describes_itself(api) -> None:
    a = await open_account(api, 1000)
    tx = new_id()
    r = await op(api, "debit", tx, a, 250)
    assert r.status_code == 200
    assert r.json() == {
        "transaction_id": tx,
        "operation": "debit",
        "account_id": a,
        "amount": 250,
        "balance_after": 750,
        "status": "applied",
    }
    assert "Idempotent-Replayed" not in r.headers
    assert await balance(api, a) == 750


async def test_replay_with_same_transaction_id_returns_first_response(api) -> None:
    a = await open_account(api, 1000)
    tx = new_id()
    first = await op(api, "debit", tx, a, 100)
    await op(api, "credit", new_id(), a, 5)  # the balance moves on meanwhile
    again = await op(api, "debit", tx, a, 100)
    assert again.status_code == first.status_code
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await balance(api, a) == 905


async def test_same_id_with_a_different_body_is_refused_and_changes_nothing(api) -> None:
    a = await open_account(api, 1000)
    tx = new_id()
    await op(api, "debit", tx, a, 100)
    r = await op(api, "debit", tx, a, 200)
    assert r.status_code == 422
    assert r.json()["error"] == "idempotency_key_reused"
    assert await balance(api, a) == 900


async def test_records_are_scoped_per_operation(api) -> None:
    a = await open_account(api, 1000)
    b = await open_account(api, 0)
    tx = new_id()
    debit = await op(api, "debit", tx, a, 100)
    credit = await op(api, "credit", tx, b, 100)
    assert debit.json()["operation"] == "debit"
    assert credit.json()["operation"] == "credit"
    assert "Idempotent-Replayed" not in credit.headers
    assert (await balance(api, a), await balance(api, b)) == (900, 100)


async def test_twenty_concurrent_duplicates_apply_once(api) -> None:
    a = await open_account(api, 1000)
    tx = new_id()
    replies = await asyncio.gather(*(op(api, "debit", tx, a, 10) for _ in range(20)))
    assert {r.status_code for r in replies} == {200}
    assert len({r.content for r in replies}) == 1
    assert sum(1 for r in replies if "Idempotent-Replayed" not in r.headers) == 1
    assert await balance(api, a) == 990


async def test_fifty_concurrent_debits_never_overdraw(api) -> None:
    a = await open_account(api, 1000)
    replies = await asyncio.gather(*(op(api, "debit", new_id(), a, 100) for _ in range(50)))
    codes = sorted(r.status_code for r in replies)
    assert codes.count(200) == 10
    assert codes.count(409) == 40
    assert {r.json()["error"] for r in replies if r.status_code == 409} == {"insufficient_funds"}
    assert await balance(api, a) == 0


async def test_insufficient_funds_is_recorded_and_replayed_even_after_funds_arrive(api) -> None:
    a = await open_account(api, 50)
    tx = new_id()
    first = await op(api, "debit", tx, a, 100)
    assert first.status_code == 409
    assert first.json()["error"] == "insufficient_funds"
    await op(api, "credit", new_id(), a, 500)
    again = await op(api, "debit", tx, a, 100)
    assert again.status_code == 409
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await balance(api, a) == 550


async def test_unknown_account_is_404(api) -> None:
    r = await op(api, "debit", new_id(), "nobody", 1)
    assert r.status_code == 404
    assert r.json()["error"] == "account_not_found"


async def test_compensation_reverses_the_debit_exactly_once(api) -> None:
    a = await open_account(api, 1000)
    tx = new_id()
    await op(api, "debit", tx, a, 300)
    first = await op(api, "compensate_debit", tx)
    assert first.status_code == 200
    assert first.json()["status"] == "compensated"
    assert first.json()["amount"] == 300
    again = await op(api, "compensate_debit", tx, a, 300)
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await balance(api, a) == 1000


async def test_compensation_whose_body_disagrees_with_the_debit_is_refused(api) -> None:
    a = await open_account(api, 1000)
    tx = new_id()
    await op(api, "debit", tx, a, 300)
    r = await op(api, "compensate_debit", tx, a, 999)
    assert r.status_code == 422
    assert await balance(api, a) == 700


async def test_compensation_before_the_debit_fences_out_the_late_debit(api) -> None:
    a = await open_account(api, 1000)
    tx = new_id()
    tomb = await op(api, "compensate_debit", tx, a, 100)
    assert tomb.status_code == 200
    assert tomb.json()["status"] == "nothing_to_compensate"
    late = await op(api, "debit", tx, a, 100)
    assert late.status_code == 409
    assert late.json()["error"] == "transaction_compensated"
    assert await balance(api, a) == 1000
    entries = await api.get(f"/accounts/{a}/entries")
    assert entries.json() == []


async def test_void_of_an_applied_credit_answers_already_applied(api) -> None:
    b = await open_account(api, 0)
    tx = new_id()
    await op(api, "credit", tx, b, 70)
    r = await op(api, "void_credit", tx, b, 70)
    assert r.json()["status"] == "already_applied"
    assert await balance(api, b) == 70


async def test_void_before_the_credit_fences_out_the_late_credit(api) -> None:
    b = await open_account(api, 0)
    tx = new_id()
    r = await op(api, "void_credit", tx, b, 70)
    assert r.json()["status"] == "voided"
    late = await op(api, "credit", tx, b, 70)
    assert late.status_code == 409
    assert late.json()["error"] == "transaction_voided"
    assert await balance(api, b) == 0


@pytest.mark.parametrize(
    "header",
    [None, "", "x" * 129, "has space", "semi;colon", "ünïcode".encode()],
    ids=["missing", "empty", "too-long", "space", "semicolon", "non-ascii"],
)
async def test_bad_transaction_id_header_is_422_naming_the_header(
    api, header: str | bytes | None
) -> None:
    a = await open_account(api, 1000)
    headers = {} if header is None else {"transaction-id": header}
    r = await api.post("/debit", json={"account_id": a, "amount": 1}, headers=headers)
    assert r.status_code == 422
    assert r.json()["error"] == "invalid_transaction_id"
    assert "transaction-id" in r.json()["message"]
    assert await balance(api, a) == 1000


@pytest.mark.parametrize(
    "body",
    [
        {"account_id": "A", "amount": 1.5},
        {"account_id": "A", "amount": 1.0},
        {"account_id": "A", "amount": "10"},
        {"account_id": "A", "amount": True},
        {"account_id": "A", "amount": 0},
        {"account_id": "A", "amount": -1},
        {"account_id": "A", "amount": 10**12 + 1},
        {"account_id": "A", "amount": 10**30},
        {"account_id": "A", "amount": 5, "extra": 1},
        {"account_id": "A"},
        {"amount": 5},
        {"account_id": 7, "amount": 5},
    ],
)
async def test_bad_bodies_are_422_and_change_nothing(api, body) -> None:
    await open_account(api, 1000, name="A")
    r = await api.post("/debit", json=body, headers={"transaction-id": new_id()})
    assert r.status_code == 422
    assert r.json()["error"] == "invalid_request"
    assert "Traceback" not in r.text
    assert await balance(api, "A") == 1000


async def test_malformed_json_is_422(api) -> None:
    r = await api.post(
        "/credit",
        content=b"{not json",
        headers={"transaction-id": new_id(), "content-type": "application/json"},
    )
    assert r.status_code == 422
    assert r.json()["error"] == "invalid_request"


async def test_opening_an_existing_account_is_409(api) -> None:
    await open_account(api, 5, name="dup")
    r = await api.post("/accounts", json={"account_id": "dup", "initial_balance": 5})
    assert r.status_code == 409
    assert r.json()["error"] == "account_exists"


async def test_accounts_listing_sums_the_total(api) -> None:
    await open_account(api, 5, name="x1")
    await open_account(api, 7, name="x2")
    r = await api.get("/accounts")
    assert r.json()["total"] == 12
    assert [a["account_id"] for a in r.json()["accounts"]] == ["x1", "x2"]
    assert (await api.get("/accounts/none")).status_code == 404
    assert (await api.get("/health")).json()["status"] == "ok"


async def test_audit_of_a_busy_but_quiet_service_is_ok(api) -> None:
    a = await open_account(api, 1000)
    b = await open_account(api, 0)
    for _ in range(5):
        tx = new_id()
        await op(api, "debit", tx, a, 10)
        await op(api, "credit", tx, b, 10)
    report = (await api.get("/audit")).json()
    assert report["ok"] is True
    assert report["total_balance"] == report["total_opened"] == 1000
    assert report["applied_operations"] == 10


async def test_opening_accounts_requires_the_admin_token_when_configured(tmp_path: Path) -> None:
    async for client in asgi_client(accounts_settings(tmp_path, admin_token="s3cret")):
        body = {"account_id": "z", "initial_balance": 1}
        assert (await client.post("/accounts", json=body)).status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert (await client.post("/accounts", json=body, headers=wrong)).status_code == 401
        odd = {"Authorization": "Bearer s3crét".encode()}
        assert (await client.post("/accounts", json=body, headers=odd)).status_code == 401
        good = {"Authorization": "Bearer s3cret"}
        assert (await client.post("/accounts", json=body, headers=good)).status_code == 201


async def test_demo_accounts_are_opened_on_first_start_only(tmp_path: Path) -> None:
    settings = accounts_settings(tmp_path, demo_accounts=3, demo_balance=500)
    async for client in asgi_client(settings):
        assert (await client.get("/accounts")).json()["total"] == 1500
        await client.post(
            "/debit", json={"account_id": "acc-01", "amount": 100}, headers={"transaction-id": "d1"}
        )
    async for client in asgi_client(settings):
        listing = (await client.get("/accounts")).json()
        assert [a["account_id"] for a in listing["accounts"]] == ["acc-01", "acc-02", "acc-03"]
        assert listing["total"] == 1400
