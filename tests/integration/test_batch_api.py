"""`POST /batch` on a real SQLite file: each item answers exactly what its single endpoint would,
with its own idempotency record and fault draw; an invalid batch changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from repository_after.domain.accounts import MAX_BATCH
from tests.conftest import accounts_settings, asgi_client
from tests.integration.test_accounts_api import balance, new_id, op, open_account


def item(operation: str, tx: str, account: str | None = None, amount: int | None = None) -> dict:
    extra = {} if account is None else {"account_id": account, "amount": amount}
    return {"operation": operation, "transaction_id": tx, **extra}


async def batch(api: httpx.AsyncClient, *items: dict[str, Any]) -> list[dict[str, Any]]:
    r = await api.post("/batch", json={"operations": list(items)})
    assert r.status_code == 200, r.text
    results: list[dict[str, Any]] = r.json()["results"]
    assert len(results) == len(items)
    return results


async def test_each_item_answers_what_its_single_endpoint_answers(api) -> None:
    a = await open_account(api, 1000)
    b = await open_account(api, 0)
    debit, credit, broke = new_id(), new_id(), new_id()
    results = await batch(
        api,
        item("debit", debit, a, 300),
        item("credit", credit, b, 300),
        item("debit", broke, b, 10_000),
    )
    assert [r["status_code"] for r in results] == [200, 200, 409]
    assert results[0]["body"]["balance_after"] == 700
    assert results[2]["body"]["error"] == "insufficient_funds"
    assert (await balance(api, a), await balance(api, b)) == (700, 300)
    # the single endpoints see the very same records: replays, byte for byte
    for tx, name, account, amount, result in (
        (debit, "debit", a, 300, results[0]),
        (credit, "credit", b, 300, results[1]),
        (broke, "debit", b, 10_000, results[2]),
    ):
        single = await op(api, name, tx, account, amount)
        assert single.status_code == result["status_code"]
        assert single.json() == result["body"]
        assert single.headers["Idempotent-Replayed"] == "true"


async def test_a_replayed_item_says_so_and_changes_nothing(api) -> None:
    a = await open_account(api, 1000)
    tx = new_id()
    first = await op(api, "debit", tx, a, 100)
    (again,) = await batch(api, item("debit", tx, a, 100))
    assert again == {"status_code": 200, "body": first.json(), "replayed": True}
    assert await balance(api, a) == 900


async def test_settlements_and_tombstones_work_inside_a_batch(api) -> None:
    a = await open_account(api, 1000)
    lost, never = new_id(), new_id()
    await op(api, "debit", lost, a, 100)
    comp, void = await batch(api, item("compensate_debit", lost), item("void_credit", never))
    assert comp["body"]["status"] == "compensated"
    assert void["body"]["status"] == "voided"
    (late,) = await batch(api, item("credit", never, a, 5))  # the void's tombstone holds
    assert (late["status_code"], late["body"]["error"]) == (409, "transaction_voided")
    assert await balance(api, a) == 1000


async def test_the_same_operation_twice_in_one_batch_applies_once(api) -> None:
    a = await open_account(api, 1000)
    tx = new_id()
    first, second = await batch(api, item("debit", tx, a, 100), item("debit", tx, a, 100))
    assert first["body"] == second["body"]
    assert [first["replayed"], second["replayed"]].count(True) == 1
    assert await balance(api, a) == 900


async def test_an_invalid_batch_is_refused_whole_and_changes_nothing(api) -> None:
    a = await open_account(api, 1000)
    tx = new_id()
    for operations in (
        [item("debit", tx, a, 100), item("credit", new_id())],  # a credit without an amount
        [item("debit", tx, a, 100), {**item("debit", new_id(), a, 1), "operation": "mint"}],
        [item("debit", tx, a, 100), item("debit", "bad id!", a, 1)],
        [item("debit", tx, a, 100), {**item("debit", new_id(), a, 1), "amount": 1.5}],
        [item("debit", tx, a, 100), {**item("debit", new_id(), a, 1), "traceparent": "0" * 257}],
        [item("debit", tx, a, 100), {**item("debit", new_id(), a, 1), "traceparent": 7}],
        [],
        [item("debit", new_id(), a, 1)] * (MAX_BATCH + 1),
    ):
        r = await api.post("/batch", json={"operations": operations})
        assert r.status_code == 422, operations
        assert r.json()["error"] == "invalid_request"
    assert await balance(api, a) == 1000
    assert (await op(api, "debit", tx, a, 100)).headers.get("Idempotent-Replayed") is None


async def test_credit_faults_are_drawn_per_item(tmp_path: Path) -> None:
    settings = accounts_settings(tmp_path, credit_failure_rate=1.0, credit_failure_mode="after")
    async for api in asgi_client(settings):
        a = await open_account(api, 1000)
        debit, credit = await batch(
            api, item("debit", new_id(), a, 10), item("credit", new_id(), a, 5)
        )
        assert debit["status_code"] == 200  # debits are never faulted
        assert (credit["status_code"], credit["body"]["error"]) == (500, "injected_fault")
        assert await balance(api, a) == 995  # "after": the credit landed, its answer was lost


async def test_a_full_batch_of_the_longest_ids_fits_the_body_limit(api) -> None:
    a = await open_account(api, 10**9, name="a" * 64)
    items = [item("compensate_debit", f"{i:04d}" + "x" * 124, a, 10**12) for i in range(MAX_BATCH)]
    results = await batch(api, *items)
    assert {r["body"]["status"] for r in results} == {"nothing_to_compensate"}
