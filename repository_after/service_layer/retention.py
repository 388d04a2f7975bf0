"""Retention: drop processed-ID records and saga histories older than the retention horizon.

What goes (older than `SAGABANK_RETENTION_DAYS`, default 30):
- operation records of the account service, except tombstones (`nothing_to_compensate`,
  `voided`), which fence out late requests forever. Applied operations stay answerable: their
  ledger entries are kept, and a duplicate, compensation or void rebuilds the original answer
  from them. Counts purged are kept as running totals, so the audit's figures do not move.
- terminal sagas (completed, compensated, rejected, resolved) with their events; parked and
  running sagas are never purged.

Invariant: the horizon is never shorter than the orchestrator's retry horizon (`Settings`
refuses it at start-up), so no automatic retry can outlive the record that makes it idempotent.
Crash window: the two purges are separate transactions; a crash between them leaves old sagas
for the next run, which is harmless (each purge is idempotent and selects by age alone).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from repository_after.service_layer.ports import AccountStore
from repository_after.service_layer.saga_ports import SagaLog


@dataclass(frozen=True, slots=True)
class Collected:
    before: str
    records: int
    sagas: int


def horizon(now: datetime, *, retention_days: float) -> str:
    """The cutoff timestamp, in the text form both stores keep their timestamps in."""
    return (now - timedelta(days=retention_days)).isoformat(timespec="microseconds")


async def collect(store: AccountStore, log: SagaLog, *, before: str) -> Collected:
    """Purge what is older than `before` from the account store and from the saga log."""
    records = await store.transaction(lambda tx: tx.purge_records(before=before))
    sagas = await log.purge_settled(before=before)
    return Collected(before=before, records=records, sagas=sagas)
