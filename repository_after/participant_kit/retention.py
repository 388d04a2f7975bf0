"""Retention of a kit participant's records: `purge` drops the records no call should need any
more, and keeps every record that fences.

Why a record can go at all. A record answers three kinds of call under its key: a repeat of its
own call (replayed), the compensation or settlement of its action (they read the applied action),
and an action arriving after its compensation or settlement (refused: the fence). The
orchestrator's automatic calls under a key all end within its retry horizon
(`SagaDefinition.retry_horizon`: every action's forward deadline and every compensation's and
settlement's settle deadline, one after the other), and `sagabank gc` refuses a cutoff closer
than that. So once a record is older than the cutoff, what can still reach it is a call no retry
of the orchestrator sent: a request held somewhere for the whole horizon, a call by hand, or an
operator's retry of a saga parked for longer (`sagabank gc` holds its cutoff back to the oldest
saga not yet settled for that: `service_layer.retention.participant_cutoff`).

What goes, created before the cutoff (`created_at < before`, strictly):
- an action's record, applied or refused. The account service may drop its applied records
  because its ledger rebuilds them; the kit has no ledger, so a call reaching a purged action is
  decided afresh: a repeat runs the handler again, a compensation finds nothing to undo (its
  tombstone), a settlement voids. After the horizon no automatic call does that;
- a compensation the service refused (any answer but 200): it undid nothing, so it fences
  nothing (`rules._fences`).

What stays, whatever its age: every record that fences its action (rules (b) of `rules`):
- the tombstones `nothing_to_compensate` and `voided`: their action never arrived, so a late one
  is exactly what they are there to refuse; without them it would apply with nothing left to
  undo it (the account service keeps its tombstones forever for the same reason);
- an applied compensation (200) and a settlement's `already_applied`. Here the action did apply,
  and its own record, once purged, no longer turns a late or by-hand duplicate into a replay:
  these records are then what refuses it (409) instead of applying it a second time after the
  saga settled, when no compensation will ever follow. They cost one row per compensated or
  settled step (the failed or uncertain sagas: few), and nothing could rebuild them.
Which record fences is decided by what the service registered, so `purge` takes the service's
operations and touches their records only: the inventory and the orders services share one
`participant_records` table on PostgreSQL, and an operation no longer registered keeps its
records.

Counts: the records purged, per operation (all, and the applied ones), are added to running
totals in `participant_retention` in the purge's own transaction. An audit that matches business
rows against applied records (`services.inventory.audit`, `services.orders.audit`) counts the rows
whose record is gone against those totals (`Unrecorded`): it stays exact in number after a purge,
and names each row as before when nothing was purged.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from repository_after.participant_kit.rules import Kind
from repository_after.participant_kit.storage import Tx

#: The answer of a compensation that fences its action (an applied one, or its tombstone).
FENCING_STATUS = 200

_ADD_TOTALS = (
    "INSERT INTO participant_retention (operation, purged, purged_applied) VALUES (?, ?, ?)"
    " ON CONFLICT (operation) DO UPDATE SET purged = participant_retention.purged"
    " + excluded.purged, purged_applied = participant_retention.purged_applied"
    " + excluded.purged_applied"
)


def _marks(names: list[str]) -> str:
    return ", ".join("?" for _ in names)


def purge(tx: Tx, operations: Mapping[str, tuple[Kind, Any]], *, before: str) -> int:
    """Delete the records of `operations` (name -> (kind, action), as `Operations.operations`)
    created before `before` (the records' own text form: ISO 8601 UTC with microseconds), keeping
    every one that fences; add what went to the running totals; return how many went."""
    actions = sorted(name for name, (kind, _) in operations.items() if kind is Kind.ACTION)
    compensations = sorted(
        name for name, (kind, _) in operations.items() if kind is Kind.COMPENSATION
    )
    clauses: list[str] = []
    params: list[Any] = [before]
    if actions:
        clauses.append(f"operation IN ({_marks(actions)})")
        params += actions
    if compensations:
        clauses.append(f"(operation IN ({_marks(compensations)}) AND status_code <> ?)")
        params += [*compensations, FENCING_STATUS]
    # settlements: every record of one fences (`voided`, `already_applied`); none goes
    if not clauses:
        return 0
    # RETURNING counts exactly what this transaction deleted, even with two purges at once
    gone = tx.execute(
        f"DELETE FROM participant_records WHERE created_at < ? AND ({' OR '.join(clauses)})"
        " RETURNING operation, applied",
        params,
    )
    totals: dict[str, list[int]] = {}
    for operation, applied in gone:
        counts = totals.setdefault(str(operation), [0, 0])
        counts[0] += 1
        counts[1] += int(bool(applied))
    for operation, (purged, purged_applied) in sorted(totals.items()):
        tx.execute(_ADD_TOTALS, (operation, purged, purged_applied))
    return len(gone)


def purged_applied(tx: Tx, operations: Iterable[str]) -> dict[str, int]:
    """Operation -> how many of its applied records retention purged, ever (0 if none)."""
    found = {
        str(operation): int(n)
        for operation, n in tx.execute(
            "SELECT operation, purged_applied FROM participant_retention"
        )
    }
    return {operation: found.get(operation, 0) for operation in operations}


class Unrecorded:
    """An audit's business rows that an applied call of an operation must explain, found with
    no record of it: each was either purged by retention or is a violation.

    `add(operation, violation)` notes one such row with the words the audit would use for it;
    `violations()` accepts them only as many, per operation, as that operation's applied records
    were purged. With none purged every row is named as before; otherwise a mismatch is one line
    giving both counts and the first rows (which of them lost a record by a purge, and which
    never had one, cannot be told apart any more)."""

    def __init__(self, tx: Tx, operations: Iterable[str]) -> None:
        self._purged = purged_applied(tx, operations)
        self._rows: dict[str, list[str]] = {operation: [] for operation in self._purged}

    def add(self, operation: str, violation: str) -> None:
        self._rows[operation].append(violation)

    def violations(self) -> list[str]:
        found: list[str] = []
        for operation, rows in self._rows.items():
            purged = self._purged[operation]
            if len(rows) == purged:
                continue
            if purged == 0:
                found += rows
                continue
            shown = "".join(f"; {row}" for row in rows[:3]) + ("; ..." if len(rows) > 3 else "")
            found.append(
                f"{len(rows)} row(s) without an applied {operation} recorded, but "
                f"{purged} applied {operation} record(s) were purged{shown}"
            )
        return found
