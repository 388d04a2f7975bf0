"""In-memory saga log: the fake for unit tests and the reference for the contract suite.

Leases follow the port's rules (owner, expiry, fence) so a test can run two orchestrators on one
log; every method runs without an await, hence atomically on the event loop. Its clock (`clock`,
`time.time` by default) is the lease clock and `now()`'s, as the database's is for the SQL
backends: a test that steps it sees leases lapse and sagas age without sleeping.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from repository_after.domain.saga import AT_REST, TERMINAL, SagaEvent, SagaStatus
from repository_after.service_layer.saga_ports import (
    DefinitionInUse,
    DefinitionKey,
    Lease,
    LeaseLost,
    SagaSummary,
    StoredSaga,
    event_times,
)


def _wall_clock() -> float:
    return time.time()


@dataclass
class _Row:
    summary: SagaSummary
    events: list[SagaEvent] = field(default_factory=list)
    owner: str | None = None
    lease_until: float = 0.0
    fence: int = 0

    def take(self, owner: str, ttl: float, now: float) -> Lease:
        self.owner, self.lease_until, self.fence = owner, now + ttl, self.fence + 1
        return Lease(self.summary.saga_id, owner, self.fence)

    def free(self, now: float) -> bool:
        return self.owner is None or self.lease_until <= now  # as the SQL backends

    def holds(self, lease: Lease) -> bool:
        return (self.owner, self.fence) == (lease.owner, lease.fence)

    def started_under(self) -> DefinitionKey:
        s = self.summary
        return DefinitionKey(s.definition, s.definition_version, s.definition_hash)


class InMemorySagaLog:
    def __init__(self, *, clock: Callable[[], float] | None = None) -> None:
        """`clock`: seconds since the epoch, the lease clock; `time.time()` (looked up at each
        reading) by default, a test's fake clock otherwise."""
        self._rows: dict[str, _Row] = {}
        self._clock = clock or _wall_clock

    async def now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def create(
        self,
        *,
        saga_id: str,
        definition: str,
        definition_version: int,
        definition_hash: str,
        params: dict[str, Any],
        events: Sequence[SagaEvent],
        status: str = "started",
        owner: str = "",
        ttl: float = 0.0,
    ) -> Lease | None:
        if saga_id in self._rows:
            return None
        created_at, updated_at = event_times(events)
        summary = SagaSummary(
            saga_id,
            definition,
            definition_version,
            definition_hash,
            dict(params),
            status,
            created_at,
            updated_at,
        )
        row = self._rows[saga_id] = _Row(summary, list(events))
        return row.take(owner, ttl, self._clock())

    async def append(
        self,
        saga_id: str,
        events: Sequence[SagaEvent],
        *,
        status: str,
        lease: Lease | None = None,
        release: bool = False,
    ) -> None:
        row = self._rows[saga_id]
        if lease is not None and not row.holds(lease):
            raise LeaseLost(f"saga {saga_id}: lease {lease} no longer holds")
        row.events.extend(events)
        if release:
            row.owner, row.lease_until = None, 0.0
        row.summary = replace(row.summary, status=status, updated_at=event_times(events)[1])

    async def claim(
        self,
        owner: str,
        *,
        limit: int,
        ttl: float,
        drivable: Collection[DefinitionKey] | None = None,
        include_own: bool = False,
        take_over: bool = False,
        exclude: Collection[str] = (),
    ) -> list[Lease]:
        now = self._clock()
        rows = [
            r
            for r in self._rows.values()
            if r.summary.status not in AT_REST
            and (drivable is None or r.started_under() in drivable)
            and (take_over or r.free(now) or (include_own and r.owner == owner))
            and r.summary.saga_id not in exclude
        ]
        rows.sort(key=lambda r: r.summary.created_at)
        return [r.take(owner, ttl, now) for r in rows[:limit]]

    async def stranded(
        self, *, drivable: Collection[DefinitionKey], idle_before: str, limit: int
    ) -> list[str]:
        now = self._clock()
        rows = [
            r.summary
            for r in self._rows.values()
            if r.summary.status not in AT_REST
            and r.started_under() not in drivable
            and r.free(now)
            and r.summary.updated_at < idle_before
        ]
        rows.sort(key=lambda s: s.updated_at)
        return [s.saga_id for s in rows[:limit]]

    async def acquire(self, saga_id: str, owner: str, *, ttl: float) -> Lease | None:
        row = self._rows.get(saga_id)
        now = self._clock()
        return row.take(owner, ttl, now) if row is not None and row.free(now) else None

    async def renew(self, leases: Sequence[Lease], *, ttl: float) -> set[str]:
        held = set()
        for lease in leases:
            row = self._rows.get(lease.saga_id)
            if row is not None and row.holds(lease):
                row.lease_until = self._clock() + ttl
                held.add(lease.saga_id)
        return held

    async def release(self, leases: Sequence[Lease]) -> None:
        for lease in leases:
            row = self._rows.get(lease.saga_id)
            if row is not None and row.holds(lease):
                row.owner, row.lease_until = None, 0.0

    async def leases_held(self, *, owner_prefix: str) -> list[Lease]:
        now = self._clock()
        return [
            Lease(saga_id, row.owner, row.fence)
            for saga_id, row in sorted(self._rows.items())
            if row.owner and row.owner.startswith(owner_prefix) and not row.free(now)
        ]

    async def load(self, saga_id: str) -> StoredSaga | None:
        row = self._rows.get(saga_id)
        if row is None:
            return None
        s = row.summary
        return StoredSaga(
            s.saga_id,
            s.definition,
            s.definition_version,
            s.definition_hash,
            s.params,
            s.status,
            s.created_at,
            s.updated_at,
            tuple(row.events),
        )

    async def summary(self, saga_id: str) -> SagaSummary | None:
        row = self._rows.get(saga_id)
        return None if row is None else row.summary

    async def list_recent(
        self, *, status: str | None = None, definition: str | None = None, limit: int
    ) -> list[SagaSummary]:
        rows = [
            s
            for s in (r.summary for r in self._rows.values())
            if status in (None, s.status) and definition in (None, s.definition)
        ]
        rows.sort(key=lambda s: s.created_at, reverse=True)
        return rows[:limit]

    async def unsettled_ids(self) -> list[str]:
        rows = [r.summary for r in self._rows.values() if r.summary.status not in AT_REST]
        rows.sort(key=lambda s: s.created_at)  # oldest first, as the SQL backends
        return [s.saga_id for s in rows]

    async def definitions_in_use(self) -> list[DefinitionInUse]:
        counts = Counter(
            (s.definition, s.definition_version, s.definition_hash)
            for s in (r.summary for r in self._rows.values())
            if s.status not in TERMINAL
        )
        return [DefinitionInUse(*key, n) for key, n in sorted(counts.items())]

    async def oldest_unsettled(self) -> dict[str, dict[str, str]]:
        oldest: dict[str, dict[str, str]] = {}
        for s in (r.summary for r in self._rows.values()):
            if s.status in TERMINAL:
                continue
            kind = "parked" if s.status == SagaStatus.FAILED_NEEDS_ATTENTION else "in_flight"
            by_kind = oldest.setdefault(s.definition, {})
            by_kind[kind] = min(by_kind.get(kind, s.created_at), s.created_at)
        return oldest

    async def purge_settled(self, *, before: str) -> int:
        old = [
            k
            for k, r in self._rows.items()
            if r.summary.status in TERMINAL and r.summary.updated_at < before
        ]
        for key in old:
            del self._rows[key]
        return len(old)

    async def count_by_status(self) -> dict[str, int]:
        return dict(Counter(r.summary.status for r in self._rows.values()))

    async def count_by_definition(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        pairs = Counter((r.summary.definition, r.summary.status) for r in self._rows.values())
        for (definition, status), n in pairs.items():
            counts.setdefault(definition, {})[status] = n
        return counts

    async def close(self) -> None:
        return None
