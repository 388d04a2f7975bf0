"""Reconcile the account service's books with the saga log: every cent in flight has an owner.

`reconcile(store, log)` runs the book audit (`service_layer.audit`) and adds what only the saga
log can say:
- conservation counts money in flight: balances plus in flight equal what was opened (the flight
  itself is judged below, so a running transfer no longer fails the audit);
- money in flight (a transaction id debited, neither credited nor compensated) is OWNED when a
  saga the log holds with that id is not settled (running, or parked for an operator), and
  ORPHANED when no saga knows the id: an orphan is a violation, listed by transaction id;
- in flight under a settled saga (completed, compensated, rejected) is a violation; one an
  operator resolved is theirs (owned), as they chose;
- each settled transfer the log still holds is checked against the ledger: completed means a
  debit of `amount` from `source` and a credit of `amount` to `target`, nothing compensated;
  compensated means no credit and the debit compensated or never applied (tombstoned); rejected
  means nothing applied at all. Any mismatch is a violation.

Reads are not one snapshot of both stores: a saga moving while the audit runs can show as owned
money of a saga the log already reports settled. Audit when quiet, like the conservation check.
Sagas purged by retention are not checked (their ledger entries are; their money is not in flight
when they settled correctly).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from typing import Any

from repository_after.domain.accounts import LedgerEntry, Operation, OperationRecord
from repository_after.domain.saga_definition import SagaStatus
from repository_after.domain.transfer import TRANSFER
from repository_after.service_layer.audit import AuditReport, audit
from repository_after.service_layer.ports import AccountsReader, AccountStore
from repository_after.service_layer.saga_ports import SagaLog

#: Settled sagas read back per status: bounds one audit's work on a log that is never purged.
SETTLED_LIMIT = 10_000
_CHECKED = (SagaStatus.COMPLETED, SagaStatus.COMPENSATED, SagaStatus.REJECTED)


def in_flight_by_transaction(reader: AccountsReader) -> dict[str, int]:
    """Transaction id -> money debited and neither credited nor compensated (only those > 0)."""
    per_tx: dict[str, dict[Operation, int]] = {}
    for total in reader.entry_totals():
        per_tx.setdefault(total.transaction_id, {})[total.operation] = total.total
    in_flight = {}
    for tx_id, ops in per_tx.items():
        left = (
            ops.get(Operation.DEBIT, 0)
            - ops.get(Operation.COMPENSATE_DEBIT, 0)
            - ops.get(Operation.CREDIT, 0)
        )
        if left > 0:
            in_flight[tx_id] = left
    return in_flight


@dataclasses.dataclass(frozen=True, slots=True)
class _Ledger:
    debit: LedgerEntry | None
    credit: LedgerEntry | None
    compensation: LedgerEntry | None
    compensation_record: OperationRecord | None


def _ledgers(reader: AccountsReader, *, ids: list[str]) -> dict[str, _Ledger]:
    return {
        tx: _Ledger(
            reader.get_entry(Operation.DEBIT, tx),
            reader.get_entry(Operation.CREDIT, tx),
            reader.get_entry(Operation.COMPENSATE_DEBIT, tx),
            reader.get_record(Operation.COMPENSATE_DEBIT, tx),
        )
        for tx in ids
    }


def _applied(entry: LedgerEntry | None, account: Any, delta: int) -> bool:
    return entry is not None and entry.account_id == account and entry.delta == delta


def settled_mismatch(status: str, params: Mapping[str, Any], ledger: _Ledger) -> str | None:
    """Why the ledger disagrees with this settled transfer, or None when it agrees."""
    amount = params.get("amount")
    if not isinstance(amount, int):
        return "no integer amount in the saga's parameters"
    if status == SagaStatus.COMPLETED:
        if not _applied(ledger.debit, params.get("source"), -amount):
            return f"completed but no debit of {amount} from {params.get('source')}"
        if not _applied(ledger.credit, params.get("target"), amount):
            return f"completed but no credit of {amount} to {params.get('target')}"
        if ledger.compensation is not None:
            return "completed but its debit was compensated"
    elif status == SagaStatus.COMPENSATED:
        if ledger.credit is not None:
            return "compensated but credited"
        if ledger.debit is not None and ledger.compensation is None:
            return "compensated but its debit stands"
        if ledger.debit is None and ledger.compensation_record is None:
            return "compensated but no compensation or tombstone recorded"
    elif any(e is not None for e in (ledger.debit, ledger.credit, ledger.compensation)):
        return "rejected but money moved"
    return None


async def reconcile(
    store: AccountStore, log: SagaLog, *, settled_limit: int = SETTLED_LIMIT
) -> AuditReport:
    """The book audit plus the reconciliation with the saga log (`reconciled` true)."""
    report = await store.read(audit)
    in_flight = await store.read(in_flight_by_transaction)
    # The book audit cannot tell a running transfer from lost money, so it calls any money in
    # flight `not_conserved`; here each cent in flight is owned or flagged below, so conservation
    # is balances + in flight == opened.
    violations = [v for v in report.violations if not v.startswith("not_conserved:")]
    if report.total_balance + report.in_flight != report.total_opened:
        violations.append(
            f"not_conserved: balances sum to {report.total_balance} with {report.in_flight} in "
            f"flight, {report.total_opened} was opened"
        )
    owned = orphaned = 0
    orphans: list[str] = []
    for tx_id, amount in sorted(in_flight.items()):
        saga = await log.summary(tx_id)
        if saga is None:
            orphaned += amount
            orphans.append(tx_id)
            violations.append(f"orphaned: {tx_id} holds {amount} in flight and no saga owns it")
        elif saga.status in _CHECKED:
            violations.append(
                f"settled_in_flight: {tx_id} is {saga.status} with {amount} in flight"
            )
        else:
            owned += amount  # running, parked for an operator, or resolved by one

    checked = 0
    for status in _CHECKED:
        sagas = [
            s
            for s in await log.list_recent(status=status.value, limit=settled_limit)
            if s.definition == TRANSFER.name
        ]
        ids = [s.saga_id for s in sagas]
        ledgers = await store.read(functools.partial(_ledgers, ids=ids))
        for saga in sagas:
            checked += 1
            why = settled_mismatch(saga.status, saga.params, ledgers[saga.saga_id])
            if why is not None:
                violations.append(f"saga_mismatch: {saga.saga_id} {why}")
    return dataclasses.replace(
        report,
        violations=violations,
        reconciled=True,
        owned_in_flight=owned,
        orphaned_in_flight=orphaned,
        orphans=orphans,
        sagas_checked=checked,
    )
