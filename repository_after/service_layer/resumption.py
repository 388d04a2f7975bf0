"""Which definition a logged saga resumes with, and what becomes of one this server cannot resume.

A saga resumes with the definition it started under: its (name, version) looked up in this
server's registry (`DefinitionLookup`, `SagaTypes.version`), whose shape hash must be the one
the log stored (`definition_of`). The start-up check (`saga_types.check_log_versions`) refuses to
start a server that lacks the definition of an unfinished saga; a saga started later by another
server (a newer release, or another shape under the same version) can still reach this one at
run time, when this worker claims it.

Such a saga is parked, not dropped: the driver appends a `parked` event (`EventKind.PARKED`,
its note naming the type, the version and this worker) and the status `failed_needs_attention`
under the saga's lease, and releases it. Dropping it instead (as before) let the lease lapse and
the saga be claimed again at every expiry, by this server as likely as by one that has its
definition, and forever if none has. Parked, it waits for an operator, who retries it on a
server that registers that version unchanged: the retry resumes it exactly where it stopped,
re-sending its last call under the same key, as after a crash. Nothing is called before parking.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from repository_after.domain.saga import (
    EventKind,
    SagaDefinition,
    SagaEvent,
    SagaState,
    SagaStatus,
)
from repository_after.service_layer.clock import utc_now
from repository_after.service_layer.saga_ports import StoredSaga
from repository_after.service_layer.saga_types import DefinitionsChanged, UnknownSagaType
from repository_after.service_layer.transitions import Observer, notify

#: (definition name, version) -> the definition a saga that started under it resumes with
#: (`SagaTypes.version`); raises KeyError if this server does not define that version.
DefinitionLookup = Callable[[str, int], SagaDefinition]

#: What `definition_of` raises for a saga this server cannot resume.
UNRESUMABLE = (UnknownSagaType, DefinitionsChanged)


def definition_of(versions: DefinitionLookup, stored: StoredSaga) -> SagaDefinition:
    """The definition `stored` started under, which it resumes with; `UnknownSagaType` if this
    server does not define that version, `DefinitionsChanged` if it defines it with another
    shape (a saga another server started after this one checked the log at start-up)."""
    definition = versions(stored.definition, stored.definition_version)
    if definition.shape_hash() != stored.definition_hash:
        raise DefinitionsChanged(
            f"saga {stored.saga_id}: saga type {stored.definition!r} version "
            f"{stored.definition_version} started under shape {stored.definition_hash}, this "
            f"server defines {definition.shape_hash()}"
        )
    return definition


def parked_event(stored: StoredSaga, error: Exception, worker: str) -> SagaEvent:
    """The `parked` event of a saga `definition_of` refused with `error` on `worker`."""
    if isinstance(error, DefinitionsChanged):
        why = str(error).removeprefix(f"saga {stored.saga_id}: ")
    else:
        why = (
            f"saga type {stored.definition!r} version {stored.definition_version} is not "
            "registered on this server"
        )
    note = f"{why} (worker {worker}): retry it on a server that registers that version unchanged"
    return SagaEvent(EventKind.PARKED, at=utc_now(), note=note)


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
