"""The AccountStore contract, run against every backend (memory, SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from repository_after.domain.accounts import Operation, OperationRecord, OperationStatus
from repository_after.service_layer import accounts
from repository_after.service_layer.ports import AccountStore


def record(tx_id: str, op: Operation = Operation.DEBIT) -> OperationRecord:
    return OperationRecord(op, tx_id, "a", 5, OperationStatus.APPLIED, True, 200, {"k": [1]})


async def test_opened_account_is_listed_with_its_opening_balance(account_store) -> None:
    await account_store.transaction(lambda tx: tx.insert_account("a", 100))
    accounts_ = await account_store.read(lambda r: r.list_accounts())
    assert [(a.account_id, a.opening_balance, a.balance) for a in accounts_] == [("a", 100, 100)]


async def test_change_balance_returns_the_new_balance_and_writes_a_ledger_entry(
    account_store: AccountStore,
) -> None:
    await account_store.transaction(lambda tx: tx.insert_account("a", 100))
    balance = await account_store.transaction(
        lambda tx: tx.change_balance("a", -30, operation=Operation.DEBIT, transaction_id="t1")
    )
    assert balance == 70
    entries = await account_store.read(lambda r: r.list_entries("a", limit=10))
    assert [(e.transaction_id, e.delta, e.balance_after) for e in entries] == [("t1", -30, 70)]
    assert await account_store.read(lambda r: r.entry_sums_by_account()) == {"a": -30}


async def test_records_round_trip_exactly(account_store: AccountStore) -> None:
    await account_store.transaction(lambda tx: tx.insert_record(record("t1")))
    got = await account_store.read(lambda r: r.get_record(Operation.DEBIT, "t1"))
    assert got == record("t1")
    assert await account_store.read(lambda r: r.get_record(Operation.CREDIT, "t1")) is None


async def test_a_second_record_for_the_same_operation_and_id_is_refused(account_store) -> None:
    await account_store.transaction(lambda tx: tx.insert_record(record("t1")))
    with pytest.raises(Exception):  # noqa: B017, PT011 - each backend raises its own error
        await account_store.transaction(lambda tx: tx.insert_record(record("t1")))
    await account_store.transaction(lambda tx: tx.insert_record(record("t1", Operation.CREDIT)))
    assert await account_store.read(lambda r: r.applied_record_count()) == 2


async def test_a_raising_transaction_leaves_nothing_behind(account_store) -> None:
    await account_store.transaction(lambda tx: tx.insert_account("a", 100))

    def half_done(tx: accounts.AccountsTx) -> None:
        tx.change_balance("a", -50, operation=Operation.DEBIT, transaction_id="t1")
        tx.insert_record(record("t1"))
        raise RuntimeError("crash mid-transaction")

    with pytest.raises(RuntimeError):
        await account_store.transaction(half_done)
    account = await account_store.read(lambda r: r.get_account("a"))
    assert account is not None
    assert account.balance == 100
    assert await account_store.read(lambda r: r.get_record(Operation.DEBIT, "t1")) is None
    assert await account_store.read(lambda r: r.list_entries("a", limit=10)) == []


async def test_entry_totals_group_by_transaction_and_operation(account_store) -> None:
    await account_store.transaction(lambda tx: tx.insert_account("a", 100))
    for op, delta in ((Operation.DEBIT, -10), (Operation.COMPENSATE_DEBIT, 10)):
        await account_store.transaction(
            lambda tx, o=op, d=delta: tx.change_balance("a", d, operation=o, transaction_id="t")
        )
    totals = await account_store.read(lambda r: sorted(r.entry_totals(), key=lambda t: t.operation))
    assert [(t.transaction_id, t.operation, t.count, t.total) for t in totals] == [
        ("t", Operation.COMPENSATE_DEBIT, 1, 10),
        ("t", Operation.DEBIT, 1, 10),
    ]


async def test_purging_old_records_keeps_tombstones_ledger_and_totals(account_store) -> None:
    await account_store.transaction(lambda tx: tx.insert_account("a", 100))
    await account_store.transaction(
        lambda tx: tx.change_balance("a", -5, operation=Operation.DEBIT, transaction_id="t1")
    )
    tombstone = OperationRecord(
        Operation.COMPENSATE_DEBIT,
        "t2",
        None,
        None,
        OperationStatus.NOTHING_TO_COMPENSATE,
        False,
        200,
        {},
    )
    refusal = OperationRecord(
        Operation.DEBIT,
        "t3",
        "a",
        10**6,
        OperationStatus.REJECTED,
        False,
        409,
        {"error": "insufficient_funds"},
    )
    for r in (record("t1"), tombstone, refusal):
        await account_store.transaction(lambda tx, r=r: tx.insert_record(r))
    assert await account_store.read(lambda r: r.applied_record_count()) == 1

    assert await account_store.transaction(lambda tx: tx.purge_records(before="2000-01-01")) == 0
    purged = await account_store.transaction(lambda tx: tx.purge_records(before="9999-01-01"))
    assert purged == 2
    assert await account_store.read(lambda r: r.get_record(Operation.DEBIT, "t1")) is None
    assert await account_store.read(lambda r: r.get_record(Operation.DEBIT, "t3")) is None
    kept = await account_store.read(lambda r: r.get_record(Operation.COMPENSATE_DEBIT, "t2"))
    assert kept == tombstone
    assert await account_store.read(lambda r: r.applied_record_count()) == 1  # running total
    entry = await account_store.read(lambda r: r.get_entry(Operation.DEBIT, "t1"))
    assert entry is not None
    assert (entry.account_id, entry.delta, entry.balance_after) == ("a", -5, 95)
    assert await account_store.read(lambda r: r.get_entry(Operation.CREDIT, "t1")) is None
