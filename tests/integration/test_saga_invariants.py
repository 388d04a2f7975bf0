"""Write-time saga invariants the account service enforces (issue 20, item 2).

For one transfer (one saga) on one account-service database, a `compensate_debit` after the
credit applied is refused (409 `transfer_credited`) and a `credit` after the debit's compensation
is refused (409 `transfer_compensated`): nothing changes, the refusal is recorded (a retry with the
same id replays it), and the audit's `compensated_and_credited` cannot be produced through the API.
Run over HTTP (SQLite) and against every store backend (memory, SQLite, PostgreSQL).
"""

from __future__ import annotations

import uuid

import httpx
import pytest

from repository_after.domain import accounts as domain_accounts
from repository_after.domain.accounts import Operation, OperationRequest, Reply
from repository_after.service_layer import accounts
from repository_after.service_layer.audit import audit
from repository_after.service_layer.ports import AccountStore
from tests.integration.test_accounts_api import balance, op, open_account


def new_id() -> str:
    return f"saga-{uuid.uuid4().hex}"


async def books(api: httpx.AsyncClient) -> dict[str, object]:
    r = await api.get("/audit")
    assert r.status_code == 200
    return dict(r.json())


# --- over HTTP ------------------------------------------------------------------------------


async def test_compensation_after_the_credit_applied_is_refused_and_recorded(api) -> None:
    a, b = await open_account(api, 1000), await open_account(api, 0)
    tx = new_id()
    assert (await op(api, "debit", tx, a, 700)).status_code == 200
    assert (await op(api, "credit", tx, b, 700)).status_code == 200

    refused = await op(api, "compensate_debit", tx)
    assert refused.status_code == 409
    assert refused.json()["error"] == "transfer_credited"
    assert (await balance(api, a), await balance(api, b)) == (300, 700)

    again = await op(api, "compensate_debit", tx)
    assert (again.status_code, again.json()) == (409, refused.json())
    assert again.headers.get("Idempotent-Replayed") == "true"
    report = await books(api)
    assert report["ok"] is True, report["violations"]


async def test_credit_after_the_compensation_is_refused_and_recorded(api) -> None:
    a, b = await open_account(api, 1000), await open_account(api, 0)
    tx = new_id()
    assert (await op(api, "debit", tx, a, 400)).status_code == 200
    assert (await op(api, "compensate_debit", tx)).json()["status"] == "compensated"

    refused = await op(api, "credit", tx, b, 400)
    assert refused.status_code == 409
    assert refused.json()["error"] == "transfer_compensated"
    assert (await balance(api, a), await balance(api, b)) == (1000, 0)

    again = await op(api, "credit", tx, b, 400)
    assert (again.status_code, again.json()) == (409, refused.json())
    assert again.headers.get("Idempotent-Replayed") == "true"
    report = await books(api)
    assert report["ok"] is True, report["violations"]
    # The saga's unknown credit still settles: nothing landed, so the void answers `voided`.
    assert (await op(api, "void_credit", tx)).json()["status"] == "voided"


async def test_credit_after_a_compensation_tombstone_is_refused(api) -> None:
    b = await open_account(api, 0)
    tx = new_id()
    assert (await op(api, "compensate_debit", tx)).json()["status"] == "nothing_to_compensate"
    refused = await op(api, "credit", tx, b, 50)
    assert (refused.status_code, refused.json()["error"]) == (409, "transfer_compensated")
    assert await balance(api, b) == 0


async def test_a_bare_credit_with_a_fresh_id_stays_allowed(api) -> None:
    b = await open_account(api, 0)
    r = await op(api, "credit", new_id(), b, 30)
    assert (r.status_code, r.json()["status"]) == (200, "applied")
    assert await balance(api, b) == 30


async def test_the_orchestrator_flows_are_unaffected(api) -> None:
    """Credit refused definitively -> compensate; credit unknown -> void (`voided`) ->
    compensate; credit unknown -> void (`already_applied`) -> done."""
    a, b = await open_account(api, 1000), await open_account(api, 0)
    rejected = new_id()
    assert (await op(api, "debit", rejected, a, 100)).status_code == 200
    assert (await op(api, "credit", rejected, "ghost", 100)).status_code == 404
    assert (await op(api, "compensate_debit", rejected)).json()["status"] == "compensated"

    voided = new_id()
    assert (await op(api, "debit", voided, a, 100)).status_code == 200
    assert (await op(api, "void_credit", voided, b, 100)).json()["status"] == "voided"
    assert (await op(api, "compensate_debit", voided)).json()["status"] == "compensated"

    landed = new_id()
    assert (await op(api, "debit", landed, a, 100)).status_code == 200
    assert (await op(api, "credit", landed, b, 100)).status_code == 200
    assert (await op(api, "void_credit", landed)).json()["status"] == "already_applied"

    assert (await balance(api, a), await balance(api, b)) == (900, 100)
    report = await books(api)
    assert report["ok"] is True, report["violations"]


async def test_the_rules_hold_inside_a_batch(api) -> None:
    a, b = await open_account(api, 1000), await open_account(api, 0)
    tx = new_id()
    r = await api.post(
        "/batch",
        json={
            "operations": [
                {"operation": "debit", "transaction_id": tx, "account_id": a, "amount": 10},
                {"operation": "credit", "transaction_id": tx, "account_id": b, "amount": 10},
                {"operation": "compensate_debit", "transaction_id": tx},
            ]
        },
    )
    assert r.status_code == 200, r.text
    codes = [(item["status_code"], item["body"].get("error")) for item in r.json()["results"]]
    assert codes == [(200, None), (200, None), (409, "transfer_credited")]
    assert (await balance(api, a), await balance(api, b)) == (990, 10)


# --- every backend --------------------------------------------------------------------------


def request(
    operation: Operation, tx: str, account: str | None = None, amount: int | None = None
) -> OperationRequest:
    return OperationRequest(operation, tx, account, amount)


async def run(store: AccountStore, req: OperationRequest) -> Reply:
    return await store.transaction(lambda tx: accounts.perform(tx, req))


async def test_every_backend_refuses_both_orders(account_store: AccountStore) -> None:
    await account_store.transaction(lambda tx: tx.insert_account("a", 1000))
    await account_store.transaction(lambda tx: tx.insert_account("b", 0))
    await run(account_store, request(Operation.DEBIT, "s1", "a", 100))
    await run(account_store, request(Operation.CREDIT, "s1", "b", 100))
    refused = await run(account_store, request(Operation.COMPENSATE_DEBIT, "s1"))
    assert (refused.status_code, refused.body["error"]) == (409, "transfer_credited")
    assert (await run(account_store, request(Operation.COMPENSATE_DEBIT, "s1"))).replayed

    await run(account_store, request(Operation.DEBIT, "s2", "a", 200))
    await run(account_store, request(Operation.COMPENSATE_DEBIT, "s2"))
    refused = await run(account_store, request(Operation.CREDIT, "s2", "b", 200))
    assert (refused.status_code, refused.body["error"]) == (409, "transfer_compensated")
    assert (await run(account_store, request(Operation.CREDIT, "s2", "b", 200))).replayed

    balances = {
        a.account_id: a.balance for a in await account_store.read(lambda r: r.list_accounts())
    }
    assert balances == {"a": 900, "b": 100}
    report = await account_store.read(audit)
    assert report.ok, report.violations


async def test_the_rule_follows_the_saga_not_the_key(
    account_store: AccountStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one key per step (`<saga>:<step>`), the steps of one saga are still related. A
    step's action and its compensation or settlement share the step's key, as the engine sends
    them and as the participant kit's rules pair them."""
    step_of = {Operation.COMPENSATE_DEBIT: Operation.DEBIT, Operation.VOID_CREDIT: Operation.CREDIT}

    def saga_of(transaction_id: str) -> str:
        return transaction_id.rsplit(":", 1)[0]

    def step_key(saga_id: str, operation: Operation) -> str:
        return f"{saga_id}:{step_of.get(operation, operation).value}"

    monkeypatch.setattr(accounts, "saga_of", saga_of)
    monkeypatch.setattr(accounts, "step_key", step_key)
    assert domain_accounts.saga_of("x") == "x"  # today: the transaction id is the saga id
    await account_store.transaction(lambda tx: tx.insert_account("a", 1000))
    await account_store.transaction(lambda tx: tx.insert_account("b", 0))
    await run(account_store, request(Operation.DEBIT, "s1:debit", "a", 100))
    await run(account_store, request(Operation.CREDIT, "s1:credit", "b", 100))
    refused = await run(account_store, request(Operation.COMPENSATE_DEBIT, "s1:debit"))
    assert refused.body["error"] == "transfer_credited"

    await run(account_store, request(Operation.DEBIT, "s2:debit", "a", 100))
    compensated = await run(account_store, request(Operation.COMPENSATE_DEBIT, "s2:debit"))
    assert compensated.body["status"] == "compensated"
    refused = await run(account_store, request(Operation.CREDIT, "s2:credit", "b", 100))
    assert refused.body["error"] == "transfer_compensated"
