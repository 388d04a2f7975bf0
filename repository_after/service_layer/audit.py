"""The money audit: what must hold of the account service's books at any quiet moment.

Checks (each violation is reported with its figures):
- conservation: the sum of balances equals the total ever opened (money in flight during a
  running transfer shows up here, so audit when quiet, or read `in_flight`);
- every balance equals its opening balance plus its ledger entries;
- no balance is negative;
- at most one applied ledger entry per (operation, transaction id);
- no transaction id has both a compensated debit and an applied credit;
- no transaction id credits more than it debited (money created from nothing).

Who owns the money in flight is `service_layer.reconcile`'s question (it needs the saga log);
without it `reconciled` stays false.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field

from repository_after.domain.accounts import Operation
from repository_after.service_layer.ports import AccountsReader


@dataclass(frozen=True, slots=True)
class AuditReport:
    accounts: int
    total_opened: int
    total_balance: int
    in_flight: int
    applied_operations: int
    violations: list[str] = field(default_factory=list)
    #: Filled by `service_layer.reconcile` on a process that also holds the saga log; false
    #: (and the figures below zero) when only the books were checked.
    reconciled: bool = False
    owned_in_flight: int = 0
    orphaned_in_flight: int = 0
    orphans: list[str] = field(default_factory=list)
    sagas_checked: int = 0

    @property
    def ok(self) -> bool:
        return not self.violations

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "ok": self.ok}


def audit(reader: AccountsReader) -> AuditReport:
    accounts = reader.list_accounts()
    sums = reader.entry_sums_by_account()
    violations: list[str] = []
    for account in accounts:
        expected = account.opening_balance + sums.get(account.account_id, 0)
        if account.balance != expected:
            violations.append(
                f"balance_mismatch: {account.account_id} holds {account.balance}, "
                f"ledger says {expected}"
            )
        if account.balance < 0:
            violations.append(f"negative_balance: {account.account_id} holds {account.balance}")

    per_tx: dict[str, dict[Operation, int]] = defaultdict(dict)
    for total in reader.entry_totals():
        if total.count > 1:
            violations.append(
                f"applied_twice: {total.operation.value} {total.transaction_id} "
                f"applied {total.count} times"
            )
        per_tx[total.transaction_id][total.operation] = total.total
    in_flight = 0
    for tx_id, ops in per_tx.items():
        debited = ops.get(Operation.DEBIT, 0)
        compensated = ops.get(Operation.COMPENSATE_DEBIT, 0)
        credited = ops.get(Operation.CREDIT, 0)
        if compensated and credited:
            violations.append(f"compensated_and_credited: {tx_id}")
        if credited > debited - compensated:
            violations.append(
                f"money_created: {tx_id} credited {credited} against a net debit of "
                f"{debited - compensated}"
            )
        in_flight += debited - compensated - credited

    total_opened = sum(a.opening_balance for a in accounts)
    total_balance = sum(a.balance for a in accounts)
    if total_balance != total_opened:
        violations.append(
            f"not_conserved: balances sum to {total_balance}, {total_opened} was opened "
            f"({in_flight} in flight)"
        )
    return AuditReport(
        accounts=len(accounts),
        total_opened=total_opened,
        total_balance=total_balance,
        in_flight=in_flight,
        applied_operations=reader.applied_record_count(),
        violations=violations,
    )
