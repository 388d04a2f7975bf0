"""Retention: drop processed-ID records and saga histories older than the retention horizon.

What goes (older than `SAGABANK_RETENTION_DAYS`, default 30):
- operation records of the account service, except tombstones (`nothing_to_compensate`,
  `voided`), which fence out late requests forever. Applied operations stay answerable: their
  ledger entries are kept, and a duplicate, compensation or void rebuilds the original answer
  from them. Counts purged are kept as running totals, so the audit's figures do not move.
- terminal sagas (completed, compensated, rejected, resolved) with their events; parked and
  running sagas are never purged.

- the records of the participants built on the kit (the inventory, the orders service), except
  those that fence (`participant_kit.retention`: the tombstones, applied compensations,
  settlements); the counts purged are kept as running totals, so their audits stay clean.

Invariant: the horizon is never shorter than the orchestrator's retry horizon (`Settings`
refuses it at start-up), so no automatic retry can outlive the record that makes it idempotent.
A saga parked for an operator is not bounded by it: `retry` may send its calls again at any age.
The account service answers them from its ledger; a kit participant has none, so its cutoff is
held back to the start of the oldest saga not yet terminal that may call it
(`participant_cutoff`), as far as the saga log at hand knows.
Crash window: the purges are separate transactions; a crash between them leaves old rows for the
next run, which is harmless (each purge is idempotent and selects by age alone).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from repository_after.domain.saga import SagaDefinition
from repository_after.participant_kit import ParticipantService
from repository_after.service_layer.ports import AccountStore
from repository_after.service_layer.saga_ports import SagaLog

#: How much earlier than an unsettled saga's start its participants' records are kept too: the
#: participants' clocks are not the saga log's.
CLOCK_MARGIN = timedelta(days=1)


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


@dataclass(frozen=True, slots=True)
class ParticipantCollected:
    service: str
    #: the cutoff used: the horizon, or earlier when an unsettled saga held it back
    before: str
    records: int

    def held_back(self, horizon: str) -> bool:
        return self.before != horizon


def participant_cutoff(
    before: str,
    *,
    service: str,
    oldest_unsettled: Mapping[str, Mapping[str, str]],
    definitions: Mapping[str, SagaDefinition],
) -> str:
    """`before`, or earlier: CLOCK_MARGIN before the start of the oldest saga not yet terminal
    (parked or in flight: `SagaLog.oldest_unsettled`) whose type calls `service` (or is a type
    `definitions` lacks, which might), so an operator's retry of it still finds its records."""
    starts = [
        created
        for name, kinds in oldest_unsettled.items()
        if name not in definitions or service in definitions[name].services
        for created in kinds.values()
    ]
    if not starts:
        return before
    held = datetime.fromisoformat(min(starts)) - CLOCK_MARGIN
    return min(before, held.isoformat(timespec="microseconds"))


async def collect_participant(
    service: ParticipantService,
    *,
    before: str,
    oldest_unsettled: Mapping[str, Mapping[str, str]],
    definitions: Mapping[str, SagaDefinition],
) -> ParticipantCollected:
    """Purge `service`'s records older than `before`, held back by the unsettled sagas."""
    cutoff = participant_cutoff(
        before,
        service=service.name,
        oldest_unsettled=oldest_unsettled,
        definitions=definitions,
    )
    return ParticipantCollected(service.name, cutoff, await service.purge(before=cutoff))
