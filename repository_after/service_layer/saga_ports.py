"""Ports of the orchestrator: the durable saga log and the participants it calls.

`SagaLog` is append-only: a saga row (definition, parameters, current status) plus its ordered
events. `append` writes events and the new status in one durable transaction; it is the only
write after `create`. `Participant.call` performs one attempt of one remote operation and
classifies the answer; it never raises for a remote failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from repository_after.domain.saga import Outcome, SagaEvent


@dataclass(frozen=True, slots=True)
class StoredSaga:
    saga_id: str
    definition: str
    params: dict[str, Any]
    status: str
    created_at: str
    updated_at: str
    events: tuple[SagaEvent, ...]


@dataclass(frozen=True, slots=True)
class SagaSummary:
    saga_id: str
    definition: str
    params: dict[str, Any]
    status: str
    created_at: str
    updated_at: str


class SagaLog(Protocol):
    async def create(
        self, *, saga_id: str, definition: str, params: dict[str, Any], event: SagaEvent
    ) -> bool:
        """Insert the saga with its first event; False (and no change) if the id exists."""
        ...

    async def append(self, saga_id: str, events: Sequence[SagaEvent], *, status: str) -> None: ...

    async def load(self, saga_id: str) -> StoredSaga | None: ...

    async def summary(self, saga_id: str) -> SagaSummary | None: ...

    async def list_recent(
        self, *, status: str | None = None, limit: int = 100
    ) -> list[SagaSummary]: ...

    async def unsettled_ids(self) -> list[str]:
        """Ids of sagas no one has driven to a terminal or parked status yet."""
        ...

    async def count_by_status(self) -> dict[str, int]: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class CallResult:
    outcome: Outcome
    status_code: int | None = None
    error: str | None = None
    body: dict[str, Any] | None = None

    @property
    def result(self) -> str | None:
        """The participant's own status word (e.g. `voided`, `already_applied`)."""
        value = (self.body or {}).get("status")
        return value if isinstance(value, str) else None


class Participant(Protocol):
    async def call(
        self,
        *,
        service: str,
        operation: str,
        transaction_id: str,
        body: dict[str, Any],
        timeout: float,
    ) -> CallResult: ...
