"""The account operation use case (`service_layer.account_operations`), without HTTP: the fault
points fall on either side of the commit, and refusals surface as the error table reads them."""

from __future__ import annotations

import pytest

from repository_after.adapters.memory_accounts import InMemoryAccountStore
from repository_after.domain.accounts import Operation, OperationRequest
from repository_after.domain.errors import IdempotencyKeyReused
from repository_after.entrypoints.errors import answer_for
from repository_after.service_layer import accounts
from repository_after.service_layer.account_operations import InjectedFault, perform_operation
from repository_after.service_layer.faults import FaultInjector, FaultMode


async def _books() -> InMemoryAccountStore:
    store = InMemoryAccountStore()
    await store.transaction(lambda tx: accounts.open_account(tx, account_id="b", initial_balance=0))
    return store


async def _balance(store: InMemoryAccountStore) -> int:
    account = await store.read(lambda r: r.get_account("b"))
    assert account is not None
    return account.balance


def _credit(tx_id: str) -> OperationRequest:
    return OperationRequest(Operation.CREDIT, tx_id, "b", 5)


async def test_a_fault_before_the_credit_changes_nothing() -> None:
    store = await _books()
    faults = FaultInjector(rate=1.0, mode=FaultMode.BEFORE, seed=1)
    with pytest.raises(InjectedFault) as fault:
        await perform_operation(store=store, faults=faults, request=_credit("t1"))
    # The message is the answer's `message` (500 `injected_fault`): it says which side it hit.
    assert str(fault.value) == "injected fault before the credit"
    assert await _balance(store) == 0


async def test_a_fault_after_the_credit_loses_only_the_answer() -> None:
    store = await _books()
    faults = FaultInjector(rate=1.0, mode=FaultMode.AFTER, seed=1)
    with pytest.raises(InjectedFault) as fault:
        await perform_operation(store=store, faults=faults, request=_credit("t1"))
    assert str(fault.value) == "injected fault: the answer was lost after the request was processed"
    assert await _balance(store) == 5  # committed before the fault
    faults.configure(rate=0.0, mode=FaultMode.AFTER, seed=1)
    reply = await perform_operation(store=store, faults=faults, request=_credit("t1"))
    assert reply.replayed  # the retry with the same key learns what happened
    assert await _balance(store) == 5


async def test_debits_never_draw_a_fault() -> None:
    store = await _books()
    await store.transaction(lambda tx: accounts.open_account(tx, account_id="a", initial_balance=9))
    faults = FaultInjector(rate=1.0, mode=FaultMode.BEFORE, seed=1)
    debit = OperationRequest(Operation.DEBIT, "t1", "a", 4)
    reply = await perform_operation(store=store, faults=faults, request=debit)
    assert reply.status_code == 200
    assert faults.counts.before == 0


async def test_a_refusal_is_raised_and_the_error_table_answers_it() -> None:
    store = await _books()
    faults = FaultInjector(rate=0.0, mode=FaultMode.BEFORE, seed=None)
    await perform_operation(store=store, faults=faults, request=_credit("t1"))
    reused = OperationRequest(Operation.CREDIT, "t1", "b", 6)  # same key, another amount
    with pytest.raises(IdempotencyKeyReused) as refused:
        await perform_operation(store=store, faults=faults, request=reused)
    assert await _balance(store) == 5  # rolled back: nothing recorded, nothing changed
    answer = answer_for(refused.value)
    assert answer is not None
    assert (answer.status_code, answer.body["error"]) == (422, "idempotency_key_reused")


async def test_a_recorded_refusal_is_a_reply() -> None:
    store = await _books()
    faults = FaultInjector(rate=0.0, mode=FaultMode.BEFORE, seed=None)
    unknown = OperationRequest(Operation.DEBIT, "t1", "nobody", 1)
    reply = await perform_operation(store=store, faults=faults, request=unknown)
    assert (reply.status_code, reply.json()["error"]) == (404, "account_not_found")


def test_the_error_table_answers_an_injected_fault_500() -> None:
    answer = answer_for(InjectedFault("injected fault before the credit"))
    assert answer is not None
    assert answer.status_code == 500
    assert answer.body == {"error": "injected_fault", "message": "injected fault before the credit"}
