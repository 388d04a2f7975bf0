"""Ports of the orchestrator: the durable saga log and the participants it calls.

`SagaLog` is append-only: a saga row (definition, parameters, current status) plus its ordered
events. The row names the definition the saga started under: its name, version and shape hash
(`SagaDefinition.shape_hash`); a saga resumes with that version, and a server whose definition
under that version has another shape refuses to start (`saga_types.check_log_versions`).
`append` writes events and the new status in one durable transaction; it is the only write after
`create`. A saga's `created_at` and `updated_at` are the times of its first and of
its last appended event (`event_times`), so a driver that holds the events can show the saga
exactly as the log would, without reading it back.

Leases (several orchestrator workers on one log): a worker drives a saga only while it holds its
lease, `Lease(saga_id, owner, fence)`. Every claim by a new holder bumps the saga's `fence`;
`append` with a lease writes only if the row's owner and fence still match, in the same
transaction, and raises `LeaseLost` otherwise (a paused "zombie" cannot write after a takeover).
An expired lease whose fence is unchanged still writes: nobody else has touched the saga.
A claim takes only the sagas whose (name, version, shape hash), a `DefinitionKey`, is one the
claimer can drive (`drivable`): a worker never holds a saga it would have to leave (a newer
version during a rolling upgrade), so it takes no turn from the servers that can drive it.
`stranded` finds the sagas that have waited longest for a server that can (`stranded.py`).
`now()` reads the clock leases run on (the database's), for a rule that must not depend on the
reading worker's own clock (`resumption`: how long a saga has made no progress).
`Participant.call` performs one attempt of one remote operation and
classifies the answer; it never raises for a remote failure.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from repository_after.domain.saga import Outcome, SagaEvent
from repository_after.service_layer.clock import utc_now


def event_times(events: Sequence[SagaEvent]) -> tuple[str, str]:
    """(first, last) event time of a write: the `created_at` of a saga created with these events,
    and the `updated_at` of a saga they are appended to."""
    if not events:
        now = utc_now()
        return now, now
    return events[0].at, events[-1].at


@dataclass(frozen=True, slots=True)
class StoredSaga:
    saga_id: str
    definition: str
    definition_version: int
    definition_hash: str
    params: dict[str, Any]
    status: str
    created_at: str
    updated_at: str
    events: tuple[SagaEvent, ...]


@dataclass(frozen=True, slots=True)
class Lease:
    saga_id: str
    owner: str
    fence: int


class LeaseLost(Exception):
    """The saga's lease moved to another worker (or was never held): stop driving it."""


@dataclass(frozen=True, slots=True)
class SagaSummary:
    saga_id: str
    definition: str
    definition_version: int
    definition_hash: str
    params: dict[str, Any]
    status: str
    created_at: str
    updated_at: str


class DefinitionKey(NamedTuple):
    """What a saga started under, as its log row names it; a server can drive the sagas of
    exactly the keys it registers (`SagaTypes.registered`, `resumption.definition_of`)."""

    definition: str
    version: int
    shape_hash: str


@dataclass(frozen=True, slots=True)
class DefinitionInUse:
    """One (definition, version, shape hash) the log's open sagas started under, and how many."""

    definition: str
    version: int
    shape_hash: str
    sagas: int


class SagaLog(Protocol):
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
        """Insert the saga with its first events and status, leased to `owner` for `ttl` seconds.

        Returns the new lease; None (and no change) if the id exists. The orchestrator writes the
        start and the first operation's intent together (one durable write instead of two)."""
        ...

    async def append(
        self,
        saga_id: str,
        events: Sequence[SagaEvent],
        *,
        status: str,
        lease: Lease | None = None,
        release: bool = False,
    ) -> None:
        """Append events and set the status; with a lease, only if it still holds (LeaseLost).

        Without a lease the write is unfenced: for tests and single-writer tools only.
        `release` also gives the lease up in the same transaction (the saga's last write)."""
        ...

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
        """Lease up to `limit` unsettled sagas nobody holds (no owner or lease expired).

        Oldest first; concurrent claimers never get the same saga. Only sagas that started
        under one of `drivable`, when given (none if it is empty); every saga when None (a tool
        or test that drives no definition). `include_own` also takes sagas still leased under
        `owner`'s name (a restarted worker with a stable id). `take_over` takes them whatever
        their lease (an operator who knows the holder is dead): the fence still moves on, so a
        holder that is alive after all is fenced out. `drivable` limits both. `exclude`: ids
        never taken, whatever their lease (those a recovery pass has already driven and left
        unsettled: the limit then goes to sagas it has not seen)."""
        ...

    async def stranded(
        self, *, drivable: Collection[DefinitionKey], idle_before: str, limit: int
    ) -> list[str]:
        """Ids of up to `limit` unsettled sagas nobody holds (no owner or lease expired) that
        started under none of `drivable` and whose last event (`updated_at`) is before
        `idle_before` (ISO time), longest idle first: those the sweep parks (`stranded.py`)."""
        ...

    async def acquire(self, saga_id: str, owner: str, *, ttl: float) -> Lease | None:
        """Lease one saga, whatever its status, if nobody holds it; else None."""
        ...

    async def renew(self, leases: Sequence[Lease], *, ttl: float) -> set[str]:
        """Extend the leases that still hold; returns their saga ids (the others are lost)."""
        ...

    async def release(self, leases: Sequence[Lease]) -> None:
        """Give up leases that still hold, so another worker may claim them at once."""
        ...

    async def now(self) -> datetime:
        """The current time (UTC) by the clock leases expire on: the database's."""
        ...

    async def leases_held(self, *, owner_prefix: str) -> list[Lease]:
        """The live leases whose owner starts with `owner_prefix` (a starting process looks for
        its worker's earlier generations: `choreography.generations`). Reads every live lease:
        meant for a startup, not a loop."""
        ...

    async def load(self, saga_id: str) -> StoredSaga | None: ...

    async def summary(self, saga_id: str) -> SagaSummary | None: ...

    async def list_recent(
        self, *, status: str | None = None, definition: str | None = None, limit: int
    ) -> list[SagaSummary]:
        """The `limit` newest sagas (by `created_at`), newest first; only those in `status` and
        only those of the saga type `definition`, when given."""
        ...

    async def unsettled_ids(self) -> list[str]:
        """Ids of sagas no one has driven to a terminal or parked status yet, oldest first."""
        ...

    async def definitions_in_use(self) -> list[DefinitionInUse]:
        """Each distinct (definition, version, hash) of the sagas not yet terminal (parked ones
        included: an operator may retry them), with their count; sorted by those three."""
        ...

    async def purge_settled(self, *, before: str) -> int:
        """Delete terminal sagas (never parked ones) last updated before `before` (ISO time),
        with their events; returns how many."""
        ...

    async def count_by_status(self) -> dict[str, int]: ...

    async def count_by_definition(self) -> dict[str, dict[str, int]]:
        """Saga type (definition name) -> status -> how many sagas the log holds; only the pairs
        that occur (the service layer adds the zeros of the registered types)."""
        ...

    async def oldest_unsettled(self) -> dict[str, dict[str, str]]:
        """Saga type -> `in_flight` / `parked` -> the `created_at` of its oldest saga not at rest
        / parked (`failed_needs_attention`); a type or kind with no such saga is absent."""
        ...

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
