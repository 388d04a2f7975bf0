"""The account use cases (`service_layer.accounts`) rule by rule, answer by answer.

Each test asserts the exact reply (status code and whole body, message included) or the exact
refusal raised, and the books after it: the reply is what the orchestrator decides on and what a
duplicate replays byte for byte, so a rule off by one, a field missing or a message lost changes
what a transfer does or what its caller is told. A raised refusal must leave nothing behind.
"""

from __future__ import annotations

from typing import Any

import pytest

from repository_after.adapters.memory_accounts import InMemoryAccountStore
from repository_after.domain import errors
from repository_after.domain.accounts import (
    Operation,
    OperationRecord,
    OperationRequest,
    OperationStatus,
    Reply,
)
from repository_after.domain.money import MAX_BALANCE
from repository_after.service_layer import accounts

DEBIT, CREDIT = Operation.DEBIT, Operation.CREDIT
COMPENSATE, VOID = Operation.COMPENSATE_DEBIT, Operation.VOID_CREDIT


async def books(**balances: int) -> InMemoryAccountStore:
    store = InMemoryAccountStore()
    for name, balance in balances.items():
        await store.transaction(
            lambda tx, n=name, b=balance: accounts.open_account(tx, account_id=n, initial_balance=b)
        )
    return store


async def send(
    store: InMemoryAccountStore,
    op: Operation,
    tx_id: str,
    account: str | None = None,
    amount: int | None = None,
) -> Reply:
    request = OperationRequest(op, tx_id, account, amount)
    return await store.transaction(lambda tx: accounts.perform(tx, request))


async def state(store: InMemoryAccountStore) -> Any:
    """Everything a call can change: balances, ledger entries, records, the applied count."""

    def read(r: Any) -> Any:
        found = r.list_accounts()
        return (
            [(a.account_id, a.balance) for a in found],
            [
                (e.transaction_id, e.operation, e.delta)
                for a in found
                for e in r.list_entries(a.account_id, limit=100)
            ],
            sorted(
                (op, tx)
                for op in Operation
                for tx in ("t1", "t2", "t3")
                if r.get_record(op, tx) is not None
            ),
            r.applied_record_count(),
        )

    return await store.read(read)


async def raised(
    store: InMemoryAccountStore,
    op: Operation,
    tx_id: str,
    account: str | None = None,
    amount: int | None = None,
) -> tuple[str, int, str]:
    """(code, HTTP status, message) of the refusal the call raises; it must change nothing."""
    before = await state(store)
    with pytest.raises(errors.BusinessError) as refused:
        await send(store, op, tx_id, account, amount)
    assert await state(store) == before
    return refused.value.code, refused.value.http_status, refused.value.message


def answer(
    op: Operation,
    tx_id: str,
    status: str,
    account: str | None,
    amount: int | None,
    after: int | None = None,
) -> Reply:
    return Reply(
        200,
        {
            "transaction_id": tx_id,
            "operation": op.value,
            "account_id": account,
            "amount": amount,
            "balance_after": after,
            "status": status,
        },
    )


def refusal(status_code: int, code: str, message: str) -> Reply:
    return Reply(status_code, {"error": code, "message": message})


def replayed(reply: Reply) -> Reply:
    return Reply(reply.status_code, reply.body, replayed=True)


async def balance(store: InMemoryAccountStore, account: str) -> int:
    found = await store.read(lambda r: r.get_account(account))
    assert found is not None
    return found.balance


async def applied_count(store: InMemoryAccountStore) -> int:
    return await store.read(lambda r: r.applied_record_count())


async def recorded(
    store: InMemoryAccountStore, op: Operation, tx_id: str
) -> tuple[str | None, int | None, OperationStatus, bool, int, dict[str, Any]] | None:
    """What the store holds for (op, id): account, amount, status, applied, status code, body.
    Later requests are decided on it (replays, key reuse, fences, the saga rules)."""
    found: OperationRecord | None = await store.read(lambda r: r.get_record(op, tx_id))
    if found is None:
        return None
    assert (found.operation, found.transaction_id) == (op, tx_id)
    return (
        found.account_id,
        found.amount,
        found.status,
        found.applied,
        found.status_code,
        found.body,
    )


# -- debit ----------------------------------------------------------------------------------


async def test_a_debit_may_empty_an_account_but_not_overdraw_it() -> None:
    store = await books(a=100)
    emptied = answer(DEBIT, "t1", "applied", "a", 100, 0)
    assert await send(store, DEBIT, "t1", "a", 100) == emptied
    refused = refusal(409, "insufficient_funds", "account 'a' cannot cover 1")
    assert await send(store, DEBIT, "t2", "a", 1) == refused
    assert await balance(store, "a") == 0
    assert await recorded(store, DEBIT, "t1") == (
        "a",
        100,
        OperationStatus.APPLIED,
        True,
        200,
        emptied.body,
    )
    assert await recorded(store, DEBIT, "t2") == (
        "a",
        1,
        OperationStatus.REJECTED,
        False,
        409,
        refused.body,
    )
    assert await applied_count(store) == 1  # the refusal is recorded, not applied


async def test_a_debit_from_an_account_at_the_limit_applies() -> None:
    """The balance limit bounds credits only: a full account can always be debited."""
    store = await books(a=MAX_BALANCE)
    assert await send(store, DEBIT, "t1", "a", 10) == answer(
        DEBIT, "t1", "applied", "a", 10, MAX_BALANCE - 10
    )


async def test_a_debit_is_replayed_and_its_key_cannot_be_reused() -> None:
    store = await books(a=100)
    first = await send(store, DEBIT, "t1", "a", 30)
    assert first == answer(DEBIT, "t1", "applied", "a", 30, 70)
    assert await send(store, DEBIT, "t1", "a", 30) == replayed(first)
    assert await raised(store, DEBIT, "t1", "a", 31) == (
        "idempotency_key_reused",
        422,
        "transaction id 't1' was already used for a different debit request",
    )
    assert await raised(store, DEBIT, "t1", "b", 30) == (
        "idempotency_key_reused",
        422,
        "transaction id 't1' was already used for a different debit request",
    )
    assert await balance(store, "a") == 70


async def test_a_debit_of_an_unknown_account_is_refused_and_recorded() -> None:
    store = await books(a=100)
    refused = refusal(404, "account_not_found", "account 'ghost' does not exist")
    assert await send(store, DEBIT, "t1", "ghost", 5) == refused
    assert await send(store, DEBIT, "t1", "ghost", 5) == replayed(refused)
    assert await applied_count(store) == 0


async def test_a_refusal_is_replayed_and_its_key_cannot_be_reused() -> None:
    """A recorded refusal holds the request it refused: the same id with another account or
    amount is a reused key, not a replay of the refusal."""
    store = await books(a=10)
    refused = await send(store, DEBIT, "t1", "a", 30)
    assert refused == refusal(409, "insufficient_funds", "account 'a' cannot cover 30")
    assert await send(store, DEBIT, "t1", "a", 30) == replayed(refused)
    for account, amount in (("a", 5), ("b", 30)):
        assert await raised(store, DEBIT, "t1", account, amount) == (
            "idempotency_key_reused",
            422,
            "transaction id 't1' was already used for a different debit request",
        )


async def test_a_debit_after_its_compensation_is_fenced_out() -> None:
    store = await books(a=100)
    tombstone = await send(store, COMPENSATE, "t1", "a", 10)
    assert tombstone == answer(COMPENSATE, "t1", "nothing_to_compensate", "a", 10)
    assert await recorded(store, COMPENSATE, "t1") == (
        "a",
        10,
        OperationStatus.NOTHING_TO_COMPENSATE,
        False,
        200,
        tombstone.body,
    )
    assert await raised(store, DEBIT, "t1", "a", 10) == (
        "transaction_compensated",
        409,
        "transaction 't1' was compensated; its debit is refused",
    )
    assert await balance(store, "a") == 100
    assert await applied_count(store) == 0  # a tombstone applies nothing


async def test_a_debit_after_a_refused_compensation_still_applies() -> None:
    """A compensation refused (`transfer_credited`) rolled nothing back: it fences nothing."""
    store = await books(a=100, b=0)
    await send(store, CREDIT, "t1", "b", 10)
    assert (await send(store, COMPENSATE, "t1", "a", 10)).body["error"] == "transfer_credited"
    assert await send(store, DEBIT, "t1", "a", 10) == answer(DEBIT, "t1", "applied", "a", 10, 90)


# -- credit ---------------------------------------------------------------------------------


async def test_a_credit_may_fill_an_account_to_the_limit_but_not_past_it() -> None:
    store = await books(b=MAX_BALANCE - 10)
    assert await send(store, CREDIT, "t1", "b", 10) == answer(
        CREDIT, "t1", "applied", "b", 10, MAX_BALANCE
    )
    assert await send(store, CREDIT, "t2", "b", 1) == refusal(
        409, "balance_limit_exceeded", "account 'b' would exceed the limit"
    )
    assert await balance(store, "b") == MAX_BALANCE


async def test_a_credit_after_its_void_is_fenced_out() -> None:
    store = await books(b=0)
    voided = answer(VOID, "t1", "voided", "b", 10)
    assert await send(store, VOID, "t1", "b", 10) == voided
    assert await recorded(store, VOID, "t1") == (
        "b",
        10,
        OperationStatus.VOIDED,
        False,
        200,
        voided.body,
    )
    assert await raised(store, CREDIT, "t1", "b", 10) == (
        "transaction_voided",
        409,
        "transaction 't1' was voided; its credit is refused",
    )
    assert await balance(store, "b") == 0
    assert await applied_count(store) == 0


@pytest.mark.parametrize("debited", [True, False], ids=["compensated", "tombstoned"])
async def test_a_credit_after_the_debit_was_rolled_back_is_refused_and_recorded(
    debited: bool,
) -> None:
    store = await books(a=100, b=0)
    if debited:
        await send(store, DEBIT, "t1", "a", 10)
    await send(store, COMPENSATE, "t1", "a", 10)
    refused = refusal(
        409,
        "transfer_compensated",
        "the debit of transfer 't1' was compensated; its credit is refused",
    )
    assert await send(store, CREDIT, "t1", "b", 10) == refused
    assert await send(store, CREDIT, "t1", "b", 10) == replayed(refused)
    assert (await balance(store, "a"), await balance(store, "b")) == (100, 0)


# -- compensate_debit ----------------------------------------------------------------------


async def test_a_compensation_refunds_the_recorded_debit_once() -> None:
    """Sent without account or amount (a settlement may not know them), it refunds what the
    debit recorded, and says so."""
    store = await books(a=100)
    await send(store, DEBIT, "t1", "a", 30)
    refund = await send(store, COMPENSATE, "t1")
    assert refund == answer(COMPENSATE, "t1", "compensated", "a", 30, 100)
    assert await recorded(store, COMPENSATE, "t1") == (
        "a",
        30,
        OperationStatus.COMPENSATED,
        True,
        200,
        refund.body,
    )
    assert await send(store, COMPENSATE, "t1") == replayed(refund)
    assert await balance(store, "a") == 100
    assert await applied_count(store) == 2  # the debit and its refund both moved money


async def test_a_compensation_that_disagrees_with_the_debit_is_refused() -> None:
    store = await books(a=100)
    await send(store, DEBIT, "t1", "a", 30)
    for account, amount in (("a", 31), ("b", 30)):
        assert await raised(store, COMPENSATE, "t1", account, amount) == (
            "idempotency_key_reused",
            422,
            "compensate_debit for 't1' disagrees with the debit recorded for that id",
        )
    assert await balance(store, "a") == 70


async def test_a_compensation_of_a_refused_debit_leaves_a_tombstone() -> None:
    store = await books(a=5)
    await send(store, DEBIT, "t1", "a", 30)  # insufficient funds: recorded, not applied
    assert await send(store, COMPENSATE, "t1", "a", 30) == answer(
        COMPENSATE, "t1", "nothing_to_compensate", "a", 30
    )
    assert await balance(store, "a") == 5


async def test_a_compensation_after_the_credit_applied_is_refused_and_recorded() -> None:
    store = await books(a=100, b=0)
    await send(store, DEBIT, "t1", "a", 10)
    await send(store, CREDIT, "t1", "b", 10)
    refused = refusal(
        409, "transfer_credited", "transfer 't1' was credited; its debit cannot be compensated"
    )
    assert await send(store, COMPENSATE, "t1", "a", 10) == refused
    assert await send(store, COMPENSATE, "t1", "a", 10) == replayed(refused)
    assert (await balance(store, "a"), await balance(store, "b")) == (90, 10)


async def test_a_compensation_after_a_refused_credit_refunds_the_debit() -> None:
    store = await books(a=100, b=MAX_BALANCE)
    await send(store, DEBIT, "t1", "a", 10)
    assert (await send(store, CREDIT, "t1", "b", 10)).body["error"] == "balance_limit_exceeded"
    assert await send(store, COMPENSATE, "t1", "a", 10) == answer(
        COMPENSATE, "t1", "compensated", "a", 10, 100
    )


# -- void_credit ----------------------------------------------------------------------------


async def test_a_void_of_an_applied_credit_answers_already_applied_with_the_credit() -> None:
    store = await books(b=0)
    await send(store, CREDIT, "t1", "b", 70)
    settled = await send(store, VOID, "t1")
    assert settled == answer(VOID, "t1", "already_applied", "b", 70)
    assert await recorded(store, VOID, "t1") == (
        "b",
        70,
        OperationStatus.ALREADY_APPLIED,
        False,
        200,
        settled.body,
    )
    assert await send(store, VOID, "t1") == replayed(settled)
    assert await balance(store, "b") == 70
    assert await applied_count(store) == 1  # the void itself moved nothing


async def test_a_void_that_disagrees_with_the_credit_is_refused() -> None:
    store = await books(b=0)
    await send(store, CREDIT, "t1", "b", 70)
    assert await raised(store, VOID, "t1", "b", 71) == (
        "idempotency_key_reused",
        422,
        "void_credit for 't1' disagrees with the credit recorded for that id",
    )


async def test_a_void_of_a_refused_credit_leaves_a_tombstone() -> None:
    store = await books(b=MAX_BALANCE)
    await send(store, CREDIT, "t1", "b", 1)  # over the limit: recorded, not applied
    assert await send(store, VOID, "t1", "b", 1) == answer(VOID, "t1", "voided", "b", 1)
    assert await balance(store, "b") == MAX_BALANCE


# -- settlement bodies: optional checks, each field on its own ---------------------------------


async def test_a_settlement_may_name_only_some_fields_and_its_tombstone_keeps_them() -> None:
    store = await books(a=100, b=0)
    assert await send(store, COMPENSATE, "t1", "a") == answer(
        COMPENSATE, "t1", "nothing_to_compensate", "a", None
    )
    assert await send(store, VOID, "t2", None, 7) == answer(VOID, "t2", "voided", None, 7)


async def test_a_compensation_naming_only_the_account_refunds_the_debit() -> None:
    store = await books(a=100)
    await send(store, DEBIT, "t1", "a", 10)
    assert await send(store, COMPENSATE, "t1", "a") == answer(
        COMPENSATE, "t1", "compensated", "a", 10, 100
    )
    assert await send(store, COMPENSATE, "t1", None, 10) == replayed(
        answer(COMPENSATE, "t1", "compensated", "a", 10, 100)
    )
    assert await raised(store, COMPENSATE, "t1", "b") == (
        "idempotency_key_reused",
        422,
        "transaction id 't1' was already used for a different compensate_debit request",
    )


# -- opening accounts -----------------------------------------------------------------------


async def test_an_account_is_opened_once() -> None:
    store = await books(a=100)
    with pytest.raises(errors.AccountExists, match=r"^account 'a' already exists$"):
        await store.transaction(
            lambda tx: accounts.open_account(tx, account_id="a", initial_balance=5)
        )
    assert await balance(store, "a") == 100


async def test_demo_accounts_are_opened_on_an_empty_database_only() -> None:
    store = InMemoryAccountStore()
    opened = await store.transaction(
        lambda tx: accounts.open_demo_accounts(tx, count=3, balance=500)
    )
    assert opened == 3
    listed = await store.read(lambda r: r.list_accounts())
    assert [(a.account_id, a.opening_balance, a.balance) for a in listed] == [
        ("acc-01", 500, 500),
        ("acc-02", 500, 500),
        ("acc-03", 500, 500),
    ]
    again = await store.transaction(lambda tx: accounts.open_demo_accounts(tx, count=5, balance=1))
    assert again == 0
    assert len(await store.read(lambda r: r.list_accounts())) == 3
