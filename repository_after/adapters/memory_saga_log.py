"""In-memory saga log: the fake for unit tests and the reference for the contract suite."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from repository_after.domain.saga import SETTLED, SagaEvent
from repository_after.service_layer.saga_ports import SagaSummary, StoredSaga


@dataclass
class _Row:
    summary: SagaSummary
    events: list[SagaEvent] = field(default_factory=list)


class InMemorySagaLog:
    def __init__(self) -> None:
        self._rows: dict[str, _Row] = {}

    async def create(
        self, *, saga_id: str, definition: str, params: dict[str, Any], event: SagaEvent
    ) -> bool:
        if saga_id in self._rows:
            return False
        now = datetime.now(UTC).isoformat()
        summary = SagaSummary(saga_id, definition, dict(params), "started", now, now)
        self._rows[saga_id] = _Row(summary, [event])
        return True

    async def append(self, saga_id: str, events: Sequence[SagaEvent], *, status: str) -> None:
        row = self._rows[saga_id]
        row.events.extend(events)
        s = row.summary
        now = datetime.now(UTC).isoformat()
        row.summary = SagaSummary(s.saga_id, s.definition, s.params, status, s.created_at, now)

    async def load(self, saga_id: str) -> StoredSaga | None:
        row = self._rows.get(saga_id)
        if row is None:
            return None
        s = row.summary
        return StoredSaga(
            s.saga_id,
            s.definition,
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
        self, *, status: str | None = None, limit: int = 100
    ) -> list[SagaSummary]:
        rows = [r.summary for r in self._rows.values() if status in (None, r.summary.status)]
        rows.sort(key=lambda s: s.created_at, reverse=True)
        return rows[:limit]

    async def unsettled_ids(self) -> list[str]:
        return [k for k, r in self._rows.items() if r.summary.status not in SETTLED]

    async def count_by_status(self) -> dict[str, int]:
        return dict(Counter(r.summary.status for r in self._rows.values()))

    async def close(self) -> None:
        return None
