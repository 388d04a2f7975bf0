"""The orchestrator's public face: start sagas, wait for them, recover, work, operator actions.

`Orchestrator` composes the parts, each in its own module:
- `saga_driver.SagaDriver` drives ONE saga under its lease; its docstring states the write-ahead
  discipline (intent before call, outcome with the next intent, the last write releases the
  lease) that makes every crash instant recoverable;
- `driver_tasks.DriverTasks` keeps at most one driver task per saga in this process;
- `worker.Worker` is the worker loop (recovery as the first claim, then renew + claim), whose
  claims take only the sagas of the definitions registered here (`versions.registered()`);
- `stranded.StrandedSweep` parks the sagas nobody can drive once idle past the grace;
- `operator_actions.OperatorActions` retries or resolves parked sagas;
- `leases.LeaseBook` holds this worker's leases; `transitions` notifies the observers.

One process drives a saga only while it holds the saga's lease (`saga_ports.Lease`): it gets one
by creating the saga (`start`), by claiming unowned or expired sagas (`claim`, `work`,
`recover`), or by acquiring it for a duplicate request or an operator action.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Coroutine, Iterable, Mapping, Sequence
from typing import Any

from repository_after.domain.errors import IdempotencyKeyReused, TransactionIdTooLong
from repository_after.domain.ids import MAX_TRANSACTION_ID
from repository_after.domain.saga import (
    EventKind,
    SagaDefinition,
    SagaEvent,
    SagaState,
    apply,
    next_action,
    replay,
)
from repository_after.service_layer.clock import utc_now as _now
from repository_after.service_layer.driver_tasks import DriverTasks
from repository_after.service_layer.leases import LeaseBook
from repository_after.service_layer.operation_attempts import intent
from repository_after.service_layer.operator_actions import OperatorActions
from repository_after.service_layer.resumption import (
    UNRESUMABLE,
    DefinitionRegistry,
    OwnVersions,
    definition_of,
)
from repository_after.service_layer.retry import RetryPolicy
from repository_after.service_layer.saga_driver import FreshSaga, SagaDriver, SagaNotFound
from repository_after.service_layer.saga_ports import Participant, SagaLog, StoredSaga
from repository_after.service_layer.stranded import SWEEP_BATCH, StrandedSweep
from repository_after.service_layer.transitions import (
    Observer,
    SagaTransition,
    log_transition,
    notify,
)
from repository_after.service_layer.worker import Worker

__all__ = [
    "Observer",
    "Orchestrator",
    "SagaNotFound",
    "SagaTransition",
    "default_worker_id",
    "log_transition",
]


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Orchestrator:
    def __init__(
        self,
        *,
        log: SagaLog,
        participant: Participant,
        definitions: Mapping[str, SagaDefinition],
        forward: RetryPolicy,
        settle: RetryPolicy,
        versions: DefinitionRegistry | None = None,
        observers: Sequence[Observer] = (log_transition,),
        worker_id: str | None = None,
        lease_ttl: float = 10.0,
        max_sagas: int = 1000,
        unknown_version_grace: float | None = None,
        sweep_batch: int = SWEEP_BATCH,
    ) -> None:
        """`definitions`: name -> the definition new sagas start with (the latest version).
        `versions`: every registered version (`SagaTypes`): what a saga started under one
        resumes with, and what claims are limited to; by default only those in `definitions`.
        `unknown_version_grace`: seconds without progress after which a saga of a version this
        server lacks is parked (`resumption`, `stranded`); 10 lease ttls by default.
        `sweep_batch`: how many stranded sagas one pass of the sweep looks at, at most."""
        registry = versions or OwnVersions(definitions)
        lookup = registry.version
        self.log = log
        self.worker_id = worker_id or default_worker_id()
        self._definitions = definitions
        self._observers = list(observers)
        self._leases = LeaseBook(log, owner=self.worker_id, ttl=lease_ttl)
        if unknown_version_grace is None:
            unknown_version_grace = 10 * lease_ttl
        self.unknown_version_grace = unknown_version_grace
        self._driver = SagaDriver(
            log=log,
            participant=participant,
            leases=self._leases,
            versions=lookup,
            forward=forward,
            settle=settle,
            observers=self._observers,
            unknown_version_grace=unknown_version_grace,
        )
        self._drivers = DriverTasks(self._driver)
        drivable = registry.registered()
        self._sweep = StrandedSweep(
            log=log,
            drivers=self._drivers,
            drivable=drivable,
            grace=unknown_version_grace,
            batch=sweep_batch,
        )
        self._worker = Worker(
            leases=self._leases,
            drivers=self._drivers,
            max_sagas=max_sagas,
            drivable=drivable,
            sweep=self._sweep,
        )
        self._operator = OperatorActions(
            driver=self._driver, drivers=self._drivers, leases=self._leases, versions=lookup
        )
        self._versions = lookup

    # -- starting and waiting -------------------------------------------------------------

    async def start(
        self, definition: str, params: dict[str, Any], *, saga_id: str | None = None
    ) -> tuple[str, bool]:
        """Log a new saga and start driving it; an existing id with the same request is reused.

        A new saga starts on the definition's latest version, and the log keeps that version
        and its shape hash: the saga resumes with that version, whatever is registered later.

        Returns (saga id, created). Raises IdempotencyKeyReused for an id already used for a
        different request, and TransactionIdTooLong, before anything is logged, for an id whose
        keys would outgrow a participant's limit (every call would be refused after the start).
        """
        if definition not in self._definitions:
            raise KeyError(f"unknown saga definition {definition!r}")
        saga = self._definitions[definition]
        if not saga_id:
            saga_id = uuid.uuid4().hex
        elif len(saga_id) > (longest := saga.max_saga_id_length(MAX_TRANSACTION_ID)):
            raise TransactionIdTooLong(
                f"a saga of type {definition!r} takes a transaction id of at most {longest} "
                f"characters: its keys add up to {MAX_TRANSACTION_ID - longest} to it, and a "
                f"participant accepts keys of at most {MAX_TRANSACTION_ID}"
            )
        # The start and the first operation's intent go to disk together, in one write.
        events = [SagaEvent(EventKind.STARTED, at=_now())]
        started = state = replay(saga, events)
        if (call := next_action(saga, state)) is not None:
            events.append(intent(call))
            state = apply(saga, state, events[-1])
        lease = await self._leases.take(
            lambda: self.log.create(
                saga_id=saga_id,
                definition=definition,
                definition_version=saga.version,
                definition_hash=saga.shape_hash(),
                params=params,
                events=events,
                status=state.status,
                owner=self.worker_id,
                ttl=self._leases.ttl,
            )
        )
        if lease is not None:
            # Observers see the first intent, as before (the start itself is not a transition).
            for first_intent in events[1:]:
                notify(
                    self._observers, saga_id, saga.name, first_intent, started.status, state.status
                )
            self._drivers.ensure(saga_id, FreshSaga(saga, state, params, lease))
            return saga_id, True
        existing = await self.log.summary(saga_id)
        assert existing is not None
        if existing.definition != definition or existing.params != params:
            raise IdempotencyKeyReused(
                f"transaction id {saga_id!r} was already used for a different request"
            )
        self._drivers.ensure(saga_id)
        return saga_id, False

    async def run(
        self, definition: str, params: dict[str, Any], *, saga_id: str | None = None
    ) -> tuple[str, SagaState]:
        saga_id, _ = await self.start(definition, params, saga_id=saga_id)
        return saga_id, await self.drive(saga_id)

    # `drive`, `wait` and `outcome` hand back the coroutine of `DriverTasks` itself (awaited
    # exactly as an `async def`'s): they run for every transfer, a wrapper would add a coroutine.

    def drive(self, saga_id: str) -> Coroutine[Any, Any, SagaState]:
        """Drive the saga until it is terminal or parked (joining a driver already running)."""
        return self._drivers.drive(saga_id)

    def wait(self, saga_id: str, timeout: float) -> Coroutine[Any, Any, bool]:
        """True if the saga's driver finished within `timeout` seconds."""
        return self._drivers.wait(saga_id, timeout)

    def outcome(self, saga_id: str, timeout: float) -> Coroutine[Any, Any, SagaState | None]:
        """The state this process's driver of the saga ends with, if it ends within `timeout`
        seconds; None if no driver runs here, it is still running, or it failed. The state holds
        every event (`history`), so the caller can show the saga without reading the log."""
        return self._drivers.outcome(saga_id, timeout)

    async def get(self, saga_id: str) -> StoredSaga:
        return await self._driver.load(saga_id)

    def state_of(self, stored: StoredSaga) -> SagaState:
        return replay(definition_of(self._versions, stored), stored.events)

    def latest(self, name: str) -> SagaDefinition:
        """The definition new sagas of type `name` start with."""
        return self._definitions[name]

    # -- the worker loop ------------------------------------------------------------------

    async def recover(self, *, take_over: bool = False) -> dict[str, int]:
        """Claim and drive every saga left unsettled by a crash; returns final status counts.

        Claims come in batches of at most `max_sagas` leases, so this repeats until a claim
        finds nothing new (sagas another live worker holds are not taken, unless `take_over`:
        the operator knows that worker is dead; fencing still stops it if it is not). A saga of
        a version this server lacks is never claimed: it is left to a server that has it
        (`unresumable` names it), unless it made no progress for the grace, when the sweep that
        ends the recovery parks it (`stranded`; counted as `failed_needs_attention`). A saga
        driven and left unsettled is not claimed again in the same pass."""
        return await self._worker.recover(take_over=take_over)

    async def sweep(self) -> list[str]:
        """One pass of the sweep (`stranded`): park the sagas this server cannot drive that
        no server has driven for the grace; returns the ids found that are parked once it is
        done. The worker loop runs it once per lease ttl."""
        return await self._sweep.sweep()

    async def unresumable(self, saga_ids: Iterable[str]) -> dict[str, str]:
        """Those of `saga_ids` this server cannot drive (a version it lacks, or another shape):
        id -> their type and version (`saga type 'order' version 2`)."""
        found = {}
        for saga_id in saga_ids:
            saga = await self.log.summary(saga_id)
            if saga is None:
                continue  # purged meanwhile: settled
            try:
                definition_of(self._versions, saga)
            except UNRESUMABLE:
                found[saga_id] = f"saga type {saga.definition!r} version {saga.definition_version}"
        return found

    async def claim(self, *, include_own: bool = False) -> list[str]:
        """Renew the leases this worker holds, then claim and start driving free sagas.

        `include_own` (start-up only) also takes sagas leased under this worker's id, left by a
        previous process with the same stable id: that is crash recovery without waiting."""
        return await self._worker.claim(include_own=include_own)

    async def work(self, *, interval: float) -> None:
        """The worker loop: recovery first, then renew and claim every `interval` seconds."""
        await self._worker.work(interval=interval)

    async def close(self) -> None:
        await self._drivers.cancel_all()
        await self._leases.release_all()

    # -- operator actions ------------------------------------------------------------------

    async def retry(self, saga_id: str, *, note: str | None = None, wait: bool = True) -> SagaState:
        """Resume a parked saga; with `wait=False` return once it is resumed, still driving."""
        return await self._operator.retry(saga_id, note=note, wait=wait)

    async def resolve(self, saga_id: str, *, note: str | None = None) -> SagaState:
        return await self._operator.resolve(saga_id, note=note)
