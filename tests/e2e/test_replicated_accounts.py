"""Two account-service replicas (real `sagabank serve --role accounts` processes) on one
database of a server (PostgreSQL, MariaDB: `server_url`) keep every guarantee of a single
service: concurrent duplicates sent to different replicas apply once, and concurrent debits
across replicas never overdraw, also when both come at once.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.e2e.conftest import Launcher

pytestmark = pytest.mark.e2e


def replicas(launch: Launcher, url: str) -> list[str]:
    return [launch(name=f"replica-{i}", database_url=url, demo_accounts=0).url for i in range(2)]


async def post_all(calls: list[tuple[str, str, dict[str, object]]]) -> list[httpx.Response]:
    """POST every (url, transaction id, body) at once."""
    async with httpx.AsyncClient(timeout=30) as client:
        return await asyncio.gather(
            *(client.post(u, json=b, headers={"transaction-id": t}) for u, t, b in calls)
        )


def open_account(url: str, account_id: str, balance: int) -> None:
    r = httpx.post(f"{url}/accounts", json={"account_id": account_id, "initial_balance": balance})
    assert r.status_code == 201, r.text


def test_concurrent_duplicates_on_different_replicas_apply_once(
    server_url: str, launch: Launcher
) -> None:
    a, b = replicas(launch, server_url)
    open_account(a, "alice", 10_000)
    body = {"account_id": "alice", "amount": 250}
    answers = asyncio.run(post_all([(f"{(a, b)[i % 2]}/debit", "dup-1", body) for i in range(20)]))
    assert [r.status_code for r in answers] == [200] * 20
    assert {r.json()["balance_after"] for r in answers} == {9_750}
    replayed = [r.headers.get("Idempotent-Replayed") == "true" for r in answers]
    assert replayed.count(False) == 1  # exactly one request applied it, the others replayed
    for url in (a, b):
        assert httpx.get(f"{url}/accounts/alice").json()["balance"] == 9_750
        entries = httpx.get(f"{url}/accounts/alice/entries").json()
        assert len(entries) == 1


def test_concurrent_debits_across_replicas_never_overdraw(
    server_url: str, launch: Launcher
) -> None:
    a, b = replicas(launch, server_url)
    open_account(b, "bob", 1_000)
    body = {"account_id": "bob", "amount": 30}
    answers = asyncio.run(post_all([(f"{(a, b)[i % 2]}/debit", f"d-{i}", body) for i in range(50)]))
    codes = [r.status_code for r in answers]
    assert codes.count(200) == 33  # 33 * 30 = 990 <= 1_000 < 34 * 30
    assert codes.count(409) == 17
    assert {r.json()["error"] for r in answers if r.status_code == 409} == {"insufficient_funds"}
    assert httpx.get(f"{a}/accounts/bob").json()["balance"] == 10
    entries = httpx.get(f"{b}/accounts/bob/entries", params={"limit": 100}).json()
    assert sorted(e["transaction_id"] for e in entries) == sorted(
        r.json()["transaction_id"] for r in answers if r.status_code == 200
    )
    assert min(e["balance_after"] for e in entries) == 10  # never below zero on the way


def test_duplicated_debits_beyond_the_balance_apply_once_each_and_never_overdraw(
    server_url: str, launch: Launcher
) -> None:
    """12 debits of 100 from 1,000, each sent 5 times at once, spread over both replicas: 10
    apply (once each), 2 are refused, and every copy of one debit gets the same answer."""
    a, b = replicas(launch, server_url)
    open_account(a, "carol", 1_000)
    body = {"account_id": "carol", "amount": 100}
    calls = [(f"{(a, b)[(k + n) % 2]}/debit", f"c-{k}", body) for n in range(5) for k in range(12)]
    answers = asyncio.run(post_all(calls))
    by_key: dict[str, set[tuple[int, str]]] = {}
    for (_, key, _), r in zip(calls, answers, strict=True):
        by_key.setdefault(key, set()).add((r.status_code, r.text))
    assert all(len(seen) == 1 for seen in by_key.values()), by_key
    verdicts = sorted(code for ((code, _),) in by_key.values())
    assert verdicts == [200] * 10 + [409] * 2
    applied = [r.headers.get("Idempotent-Replayed") != "true" for r in answers if r.is_success]
    assert applied.count(True) == 10  # one request per applied debit, the others replayed it
    assert httpx.get(f"{b}/accounts/carol").json()["balance"] == 0
    entries = httpx.get(f"{a}/accounts/carol/entries", params={"limit": 100}).json()
    assert len(entries) == 10
    assert min(e["balance_after"] for e in entries) == 0
