"""Retention: after `purge_records`, applied operations still answer exactly as they did, through
the ledger; tombstones still fence; the audit's figures do not move; short horizons are refused;
a kit participant's cutoff is held back by the unsettled sagas that may call it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from repository_after.adapters.memory_accounts import InMemoryAccountStore
from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.config import Settings
from repository_after.domain import errors
from repository_after.domain.accounts import Operation, OperationRequest, Reply
from repository_after.domain.sagas import DEFINITIONS
from repository_after.service_layer import account_records, accounts, retention
from repository_after.service_layer.audit import audit

FUTURE = "9999-01-01"


async def send(
    store: InMemoryAccountStore,
    op: Operation,
    tx: str,
    account: str | None = None,
    amount: int | None = None,
) -> Reply:
    request = OperationRequest(op, tx, account, amount)
    return await store.transaction(lambda t: accounts.perform(t, request))


async def books() -> InMemoryAccountStore:
    store = InMemoryAccountStore()
    for name, balance in (("a", 1000), ("b", 0)):
        await store.transaction(lambda t, n=name, b=balance: t.insert_account(n, b))
    return store


async def test_a_duplicate_after_the_purge_replays_the_first_answer_exactly() -> None:
    store = await books()
    first = await send(store, Operation.DEBIT, "t1", "a", 300)
    await send(store, Operation.CREDIT, "t9", "a", 5)  # the balance moves on
    assert await store.transaction(lambda t: t.purge_records(before=FUTURE)) == 2
    again = await send(store, Operation.DEBIT, "t1", "a", 300)
    assert (again.status_code, again.body, again.replayed) == (200, first.body, True)
    reused = OperationRequest(Operation.DEBIT, "t1", "a", 999)
    with pytest.raises(errors.IdempotencyKeyReused):
        await store.transaction(lambda t: accounts.perform(t, reused))
    balances = {x.account_id: x.balance for x in await store.read(lambda r: r.list_accounts())}
    assert balances["a"] == 705


@pytest.mark.parametrize(
    ("op", "tx", "account", "amount"),
    [
        (Operation.DEBIT, "t1", "a", 300),
        (Operation.CREDIT, "t2", "b", 7),
        (Operation.COMPENSATE_DEBIT, "t1", "a", 300),
    ],
)
async def test_a_purged_applied_record_is_rebuilt_from_its_ledger_entry_as_it_was(
    op: Operation, tx: str, account: str, amount: int
) -> None:
    store = await books()
    await send(store, Operation.DEBIT, "t1", "a", 300)
    await send(store, Operation.CREDIT, "t2", "b", 7)
    await send(store, Operation.COMPENSATE_DEBIT, "t1", "a", 300)
    kept = await store.read(lambda r: r.get_record(op, tx))
    assert kept is not None
    await store.transaction(lambda t: t.purge_records(before=FUTURE))
    assert await store.read(lambda r: r.get_record(op, tx)) is None
    assert await store.transaction(lambda t: account_records.original(t, op, tx)) == kept
    assert await store.transaction(lambda t: account_records.original(t, op, "t3")) is None


async def test_a_compensation_after_the_purge_still_reverses_the_debit_once() -> None:
    store = await books()
    await send(store, Operation.DEBIT, "t1", "a", 300)
    await store.transaction(lambda t: t.purge_records(before=FUTURE))
    first = await send(store, Operation.COMPENSATE_DEBIT, "t1")
    assert first.body["status"] == "compensated"
    await store.transaction(lambda t: t.purge_records(before=FUTURE))
    again = await send(store, Operation.COMPENSATE_DEBIT, "t1")
    assert again.body == first.body
    account = await store.read(lambda r: r.get_account("a"))
    assert account is not None
    assert account.balance == 1000


async def test_a_credit_after_its_compensation_was_purged_is_still_refused() -> None:
    """The rebuilt compensation still rolls its saga back: paying the credit now would leave the
    transfer both refunded and paid."""
    store = await books()
    await send(store, Operation.DEBIT, "t1", "a", 300)
    await send(store, Operation.COMPENSATE_DEBIT, "t1")
    await store.transaction(lambda t: t.purge_records(before=FUTURE))
    late = await send(store, Operation.CREDIT, "t1", "b", 300)
    assert (late.status_code, late.body["error"]) == (409, "transfer_compensated")
    balances = {x.account_id: x.balance for x in await store.read(lambda r: r.list_accounts())}
    assert balances == {"a": 1000, "b": 0}


async def test_a_compensation_disagreeing_with_a_purged_debit_is_refused() -> None:
    store = await books()
    await send(store, Operation.DEBIT, "t1", "a", 300)
    await store.transaction(lambda t: t.purge_records(before=FUTURE))
    wrong = OperationRequest(Operation.COMPENSATE_DEBIT, "t1", "a", 299)
    with pytest.raises(errors.IdempotencyKeyReused) as refused:
        await store.transaction(lambda t: accounts.perform(t, wrong))
    assert refused.value.message == (
        "compensate_debit for 't1' disagrees with the debit recorded for that id"
    )


async def test_a_void_after_the_purge_still_sees_the_credit_that_landed() -> None:
    store = await books()
    await send(store, Operation.CREDIT, "t1", "b", 40)
    await store.transaction(lambda t: t.purge_records(before=FUTURE))
    assert (await send(store, Operation.VOID_CREDIT, "t1")).body["status"] == "already_applied"


async def test_tombstones_survive_the_purge_and_keep_fencing() -> None:
    store = await books()
    await send(store, Operation.COMPENSATE_DEBIT, "t1", "a", 10)
    await send(store, Operation.VOID_CREDIT, "t2", "b", 10)
    assert await store.transaction(lambda t: t.purge_records(before=FUTURE)) == 0
    with pytest.raises(errors.TransactionCompensated):
        await store.transaction(
            lambda t: accounts.perform(t, OperationRequest(Operation.DEBIT, "t1", "a", 10))
        )
    with pytest.raises(errors.TransactionVoided):
        await store.transaction(
            lambda t: accounts.perform(t, OperationRequest(Operation.CREDIT, "t2", "b", 10))
        )


async def test_the_audit_is_unchanged_by_the_purge() -> None:
    store = await books()
    for i in range(3):
        await send(store, Operation.DEBIT, f"t{i}", "a", 10)
        await send(store, Operation.CREDIT, f"t{i}", "b", 10)
    before = await store.read(audit)
    await store.transaction(lambda t: t.purge_records(before=FUTURE))
    after = await store.read(audit)
    assert after == before
    assert after.ok
    assert after.applied_operations == 6


def test_a_retention_shorter_than_the_retry_horizon_is_refused() -> None:
    with pytest.raises(ValidationError, match="retry horizon"):
        Settings(retention_days=0.001, retry_deadline=60, settle_deadline=120)
    ok = Settings(retention_days=0.01, retry_deadline=60, settle_deadline=120)
    # the order saga's (six actions; three compensations and a settlement), the longest
    assert ok.retry_horizon() == 6 * 60 + 4 * 120


def test_the_horizon_is_the_retention_period_before_now_in_stored_form() -> None:
    now = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
    assert retention.horizon(now, retention_days=30) == "2026-01-01T12:00:00.000000+00:00"


async def test_collect_purges_only_what_is_older_than_the_horizon() -> None:
    store, log = await books(), InMemorySagaLog()
    await send(store, Operation.DEBIT, "t1", "a", 300)
    kept = await retention.collect(store, log, before="2000-01-01T00:00:00.000000+00:00")
    assert (kept.records, kept.sagas) == (0, 0)
    purged = await retention.collect(store, log, before=FUTURE)
    assert (purged.before, purged.records, purged.sagas) == (FUTURE, 1, 0)


#: (saga type -> parked / in_flight -> created_at), as `SagaLog.oldest_unsettled` answers
PARKED_ORDER = {"order": {"parked": "2026-01-10T08:00:00.000000+00:00"}}


def cutoff(service: str, oldest: dict[str, dict[str, str]], before: str = "2026-02-01") -> str:
    return retention.participant_cutoff(
        before, service=service, oldest_unsettled=oldest, definitions=DEFINITIONS
    )


def test_a_participant_cutoff_is_the_horizon_without_unsettled_sagas() -> None:
    before = "2026-02-01T00:00:00.000000+00:00"
    assert cutoff("inventory", {}, before) == before


def test_an_unsettled_saga_that_calls_the_participant_holds_its_cutoff_back() -> None:
    # a day before the parked order started: an operator's retry still finds its records
    assert cutoff("inventory", PARKED_ORDER) == "2026-01-09T08:00:00.000000+00:00"
    in_flight = {"order": {"parked": "2026-01-20T00:00:00.000000+00:00"}}
    in_flight["order"]["in_flight"] = "2026-01-15T00:00:00.000000+00:00"
    assert cutoff("orders", in_flight) == "2026-01-14T00:00:00.000000+00:00"


def test_a_saga_that_never_calls_the_participant_does_not_hold_it_back() -> None:
    transfer = {"transfer": {"parked": "2020-01-01T00:00:00.000000+00:00"}}
    assert cutoff("inventory", transfer, "2026-02-01") == "2026-02-01"
    # a type this server does not define might call it
    unknown = {"gone": {"parked": "2020-01-01T00:00:00.000000+00:00"}}
    assert cutoff("inventory", unknown) == "2019-12-31T00:00:00.000000+00:00"


def test_an_unsettled_saga_younger_than_the_horizon_changes_nothing() -> None:
    assert cutoff("inventory", PARKED_ORDER, "2025-12-01") == "2025-12-01"
