"""The account service's own records, read after it stopped, checked against each saga's end.

For every transfer, what the account service applied must match the orchestrator's verdict:
- completed   => debit and credit applied, no compensation;
- compensated => credit not applied; compensation recorded, and it reversed money iff the debit
                 was applied (`compensated`) — else it left a tombstone (`nothing_to_compensate`);
- rejected    => nothing applied (the debit, if recorded, was refused);
and no (operation, transaction id) may carry two ledger entries.
Only the SQLite layout is read here; another backend adds a branch in `_connect`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

Operations = dict[tuple[str, str], str]  # (operation, transaction id) -> recorded status


def _connect(database_url: str) -> sqlite3.Connection:
    if not database_url.startswith("sqlite:///"):
        raise NotImplementedError(f"reading the records of {database_url!r} is not supported")
    return sqlite3.connect(database_url.removeprefix("sqlite:///"))


def read_operations(database_url: str) -> Operations:
    conn = _connect(database_url)
    try:
        rows = conn.execute("SELECT operation, transaction_id, status FROM operations")
        return {(op, tx): status for op, tx, status in rows}
    finally:
        conn.close()


def applied_twice(database_url: str) -> list[str]:
    conn = _connect(database_url)
    try:
        rows = conn.execute(
            "SELECT operation, transaction_id, COUNT(*) FROM ledger_entries"
            " GROUP BY operation, transaction_id HAVING COUNT(*) > 1"
        )
        return [f"{op} {tx} has {n} ledger entries" for op, tx, n in rows]
    finally:
        conn.close()


def mismatches(statuses: Mapping[str, str], ops: Operations) -> list[str]:
    """Every saga whose final status disagrees with the account service's records."""
    found = []
    for tx_id, status in sorted(statuses.items()):
        debit = ops.get(("debit", tx_id))
        credit = ops.get(("credit", tx_id))
        compensation = ops.get(("compensate_debit", tx_id))
        seen = f"debit={debit} credit={credit} compensate_debit={compensation}"
        if status == "completed":
            ok = debit == credit == "applied" and compensation is None
        elif status == "compensated":
            ok = (
                credit != "applied"
                and compensation in ("compensated", "nothing_to_compensate")
                and (debit == "applied") == (compensation == "compensated")
            )
        elif status == "rejected":
            ok = debit in (None, "rejected") and credit is None and compensation is None
        else:
            continue  # not settled: reported as such by the runner
        if not ok:
            found.append(f"{tx_id} is {status} but the account service recorded {seen}")
    return found
