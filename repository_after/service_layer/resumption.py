"""Which definition a logged saga resumes with, and what becomes of one this server cannot resume.

A saga resumes with the definition it started under: its (name, version) looked up in this
server's registry (`DefinitionRegistry.version`, `SagaTypes`), whose shape hash must be the one
the log stored (`definition_of`). A worker claims only the sagas of the keys its registry
`registered()` (the same test, done by the log: `SagaLog.claim(drivable=...)`), so a claim never
hands it one of these; such a saga still reaches it when asked to drive it by id (a duplicate
request, an operator action) or by the sweep (`stranded`), which drives through here the sagas
that have waited longest for a server that can, and a claim through a log that ignored the
filter would too. `Unresumable.handle` decides what becomes of it; nothing is called either way:

- **Another shape under the same version** (`DefinitionsChanged`): two servers disagree about
  what the saga is, a deployment error. It is parked as soon as it reaches here (the sweep
  brings it only once stranded, as any saga this server cannot drive: a server with its shape
  may be driving it): one `parked` event (its note names the type, the version, both hashes and
  this worker) and the status `failed_needs_attention`, written under the saga's lease, which
  the same write releases.
- **A version (or type) not registered here** (`UnknownSagaType`): in a rolling upgrade another
  server drives it. Unless it has made NO PROGRESS for longer than the grace
  (`unknown_version_grace`, longer than the lease ttl), it is left as it is: not leased, or, if
  this worker holds it (claimed), its lease neither renewed (`LeaseBook.forget`) nor released, so
  it lapses after the ttl and this worker does not take it back sooner (one warning names the
  type, the version and the worker). Past the grace it is parked, with that reason: one that a
  server with its version keeps driving never is; one that no running server can drive waits
  for an operator instead of waiting forever.

Progress is the saga's `updated_at`, the time of its last event as the log stores it, and its
age is read on the log's clock (`SagaLog.now`, the database's, the one leases expire on), so the
parking worker's own clock plays no part, as for leases. What is relied on: the worker that wrote
that last event stamped it with a clock not far behind the database's; one `s` seconds behind
makes the saga park up to `s` early. Never a saga another worker holds: parking needs its lease.

Parked, a saga waits for an operator, who retries it on a server that registers that version
unchanged: the retry resumes it exactly where it stopped, re-sending its last call under the same
key, as after a crash. A saga at rest, or held by another worker, is left as it is (and answered
as the log has it: the driver of a saga that just settled may be joined late).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from repository_after.domain.saga import (
    AT_REST,
    EventKind,
    SagaDefinition,
    SagaEvent,
    SagaState,
    SagaStatus,
)
from repository_after.service_layer.clock import utc_now
from repository_after.service_layer.leases import LeaseBook
from repository_after.service_layer.saga_ports import (
    DefinitionKey,
    Lease,
    SagaLog,
    SagaSummary,
    StoredSaga,
)
from repository_after.service_layer.saga_types import (
    DefinitionsChanged,
    UnknownSagaType,
    VersionNotRegistered,
)
from repository_after.service_layer.transitions import LOGGER_NAME, Observer, notify

logger = logging.getLogger(LOGGER_NAME)

#: (definition name, version) -> the definition a saga that started under it resumes with
#: (`SagaTypes.version`); raises KeyError if this server does not define that version.
DefinitionLookup = Callable[[str, int], SagaDefinition]

#: What `definition_of` raises for a saga this server cannot resume.
UNRESUMABLE = (UnknownSagaType, DefinitionsChanged)


class DefinitionRegistry(Protocol):
    """The definitions a server registers (`SagaTypes`): what a saga resumes with, and the keys
    of them all, which its claims are limited to; one object, so the two cannot disagree."""

    def version(self, name: str, version: int) -> SagaDefinition:
        """The definition `name` `version`; KeyError if it is not registered."""
        ...

    def registered(self) -> frozenset[DefinitionKey]: ...


class OwnVersions:
    """The registry of a server that knows only `definitions`, each under its own version."""

    def __init__(self, definitions: Mapping[str, SagaDefinition]) -> None:
        self._definitions = dict(definitions)

    def version(self, name: str, version: int) -> SagaDefinition:
        found = self._definitions.get(name)
        if found is None or found.version != version:
            raise UnknownSagaType(f"no saga type {name!r} version {version}")
        return found

    def registered(self) -> frozenset[DefinitionKey]:
        return frozenset(
            DefinitionKey(d.name, d.version, d.shape_hash()) for d in self._definitions.values()
        )


def definition_of(versions: DefinitionLookup, stored: StoredSaga | SagaSummary) -> SagaDefinition:
    """The definition `stored` started under, which it resumes with; `VersionNotRegistered` (an
    `UnknownSagaType`) if this server does not define that version, `DefinitionsChanged` if it
    defines it with another shape (a saga another server started after this one checked the log
    at start-up)."""
    try:
        definition = versions(stored.definition, stored.definition_version)
    except KeyError as exc:  # the saga exists: its type's version is another server's
        raise VersionNotRegistered(
            f"saga {stored.saga_id}: saga type {stored.definition!r} version "
            f"{stored.definition_version} is not registered on this server (a server that "
            "registers it drives this saga)"
        ) from exc
    if definition.shape_hash() != stored.definition_hash:
        raise DefinitionsChanged(
            f"saga {stored.saga_id}: saga type {stored.definition!r} version "
            f"{stored.definition_version} started under shape {stored.definition_hash}, this "
            f"server defines {definition.shape_hash()}"
        )
    return definition


#: (saga id, events, status, lease) -> the lease written under: the driver's last write of a saga
#: (`SagaDriver.write` with `release=True`), which appends under that lease (or its direct
#: successor) and gives it up in the same transaction.
WriteAndRelease = Callable[[str, Sequence[SagaEvent], str, Lease], Awaitable[Lease]]


class Unresumable:
    """What the driver does with a saga `definition_of` refused (see the module docstring)."""

    def __init__(
        self,
        *,
        log: SagaLog,
        leases: LeaseBook,
        observers: Sequence[Observer],
        grace: float,
        write_and_release: WriteAndRelease,
    ) -> None:
        self._log = log
        self._leases = leases
        self._observers = observers
        self._grace = grace
        self._write_and_release = write_and_release

    async def handle(self, stored: StoredSaga, lease: Lease | None, error: Exception) -> SagaState:
        """Park `stored`, leave it to another server, or leave it as it is; `lease`: the one
        this worker holds (it claimed the saga), read before `stored` was."""
        saga_id = stored.saga_id
        claimed = lease is not None
        # Parking is a fenced write: take the lease if it is due, then judge what the last
        # holder wrote.
        if (
            not claimed
            and stored.status not in AT_REST
            and await self._overdue(stored, error)
            and (lease := await self._leases.acquire(saga_id)) is not None
        ):
            stored = await self._load(saga_id)
        if lease is None:
            return state_without_definition(stored)  # another worker holds it, or not overdue
        if stored.status not in AT_REST:
            idle = None if isinstance(error, DefinitionsChanged) else await self._idle(stored)
            if idle is None or idle > self._grace:
                return await self._park(stored, lease, parked_note(stored, error, idle))
            if claimed:
                return self._leave(stored, idle)
        await self._leases.release(saga_id)  # at rest, or a lease taken for nothing
        return state_without_definition(stored)

    def _leave(self, stored: StoredSaga, idle: float) -> SagaState:
        """Stop driving a claimed saga without renewing or releasing its lease: it lapses after
        the ttl, and no claim of this worker takes it back sooner."""
        saga_id = stored.saga_id
        self._leases.forget(saga_id)
        logger.warning(
            "saga %s: saga type %r version %s is not registered on this server (worker %s): "
            "left for a server that registers it; parked if it makes no progress for %gs (its "
            "last event is %.0fs old)",
            saga_id,
            stored.definition,
            stored.definition_version,
            self._leases.owner,
            self._grace,
            idle,
            extra={"transaction_id": saga_id},
        )
        return state_without_definition(stored)

    async def _overdue(self, stored: StoredSaga, error: Exception) -> bool:
        return isinstance(error, DefinitionsChanged) or await self._idle(stored) > self._grace

    async def _idle(self, stored: StoredSaga) -> float:
        """Seconds since the saga's last event, on the log's clock (module docstring)."""
        now = await self._log.now()
        return (now - datetime.fromisoformat(stored.updated_at)).total_seconds()

    async def _load(self, saga_id: str) -> StoredSaga:
        stored = await self._log.load(saga_id)
        assert stored is not None  # sagas are deleted only once terminal (`purge_settled`)
        return stored

    async def _park(self, stored: StoredSaga, lease: Lease, note: str) -> SagaState:
        saga_id = stored.saga_id
        event = SagaEvent(
            EventKind.PARKED,
            at=utc_now(),
            note=f"{note} (worker {self._leases.owner}): retry it "
            "on a server that registers that version unchanged",
        )
        status = SagaStatus.FAILED_NEEDS_ATTENTION
        await self._write_and_release(saga_id, [event], status, lease)
        logger.warning("saga %s parked: %s", saga_id, event.note, extra={"transaction_id": saga_id})
        return parked_state(self._observers, stored, event)


def parked_note(stored: StoredSaga, error: Exception, idle: float | None) -> str:
    """Why a saga `definition_of` refused with `error` is parked, `idle` seconds after its last
    event (None for another shape, parked at once); the `parked` event adds the worker and
    what to do."""
    if idle is None:
        return str(error).removeprefix(f"saga {stored.saga_id}: ")
    return (
        f"saga type {stored.definition!r} version {stored.definition_version} is not registered "
        f"on this server, and the saga made no progress for {idle:.0f}s"
    )


def parked_state(observers: Sequence[Observer], stored: StoredSaga, event: SagaEvent) -> SagaState:
    """The saga as `event` parked it (`state_without_definition`); the observers see the
    transition, as any other."""
    after = SagaStatus.FAILED_NEEDS_ATTENTION
    notify(observers, stored.saga_id, stored.definition, event, stored.status, after)
    return state_without_definition(replace(stored, status=after, events=(*stored.events, event)))


def state_without_definition(stored: StoredSaga) -> SagaState:
    """The saga as far as it can be told without its definition: the log's status, every event
    and, when a `parked` event parked it, its reason. The step it stands at is known only to a
    server that has the definition (`replay`)."""
    last = stored.events[-1] if stored.events else None
    reason = None
    parked = stored.status == SagaStatus.FAILED_NEEDS_ATTENTION
    if parked and last is not None and last.kind is EventKind.PARKED:
        reason = last.note
    return SagaState(status=stored.status, parked_reason=reason, history=stored.events)
