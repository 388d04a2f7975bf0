"""The imperative shell around the saga state machine: log intent, call, log outcome.

Write-ahead discipline, per remote operation:
1. the `operation_started` intent is appended durably *before* the call: the first one in the
   same write that creates the saga, later ones together with the outcome of the previous
   operation, which may safely wait until then (if we crash first, recovery re-sends the same
   call with the same key and the participant replays its answer);
2. an unknown attempt that will be retried is appended before the wait for its retry (history
   for operators: the log shows what the operation is waiting on);
3. the final outcome (a definite answer, or the last unknown attempt and the give-up) is applied
   to the in-memory state at once and written with the next intent, or with the terminal status
   when the saga ends (that last write also releases the lease).
A happy two-step saga is thus three durable writes and no reads; an unknown credit settled and
compensated is five (docs/performance.md).
So after a crash at any instant, folding the log gives a state whose next action is safe to
(re)issue. Every call of one saga carries the saga id as its idempotency key.

One driver per saga per process (`_tasks`), and one process per saga: a worker drives a saga only
while it holds the saga's lease (`saga_ports.Lease`). It gets one by creating the saga, by
`claim`ing unowned or expired sagas in `work` (the worker loop, whose first claim is crash
recovery), or by `acquire` for a duplicate request or an operator action. Every write carries the
lease and is refused (`LeaseLost`) once another worker has taken over; before each remote call the
driver also checks that the lease has not lapsed, so a worker that lost a saga stops at once and
makes no further call. Calls re-sent by the new owner carry the same idempotency key, and the
account service's tombstones refuse late deliveries, so a takeover is as safe as a crash.

Transitions are observable: each applied event is passed to the `observers` as a
`SagaTransition` (the default observer logs it with the transaction id).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

from repository_after.domain.errors import IdempotencyKeyReused
from repository_after.domain.saga import (
    Call,
    EventKind,
    InvalidTransition,
    Outcome,
    Role,
    SagaDefinition,
    SagaEvent,
    SagaState,
    apply,
    next_action,
    replay,
)
from repository_after.service_layer.clock import utc_now as _now
from repository_after.service_layer.leases import LeaseBook
from repository_after.service_layer.retry import RetryPolicy
from repository_after.service_layer.saga_ports import (
    CallResult,
    LeaseLost,
    Participant,
    SagaLog,
    StoredSaga,
)

logger = logging.getLogger(__name__)


class SagaTransition(NamedTuple):
    """One applied event, as observers see it (a named tuple: several are built per saga)."""

    saga_id: str
    definition: str
    event: SagaEvent
    before: str
    after: str


Observer = Callable[[SagaTransition], None]


def log_transition(t: SagaTransition) -> None:
    if not logger.isEnabledFor(logging.INFO):
        return  # several transitions per transfer: not even the message is built
    e = t.event
    what = e.kind.value if e.step is None else f"{e.kind.value} {e.step}/{e.operation}"
    if e.outcome is not None:
        what += f" -> {e.outcome.value} ({e.status_code or e.error or ''})"
    logger.info(
        "saga %s %s: %s [%s -> %s]",
        t.definition,
        t.saga_id,
        what,
        t.before,
        t.after,
        extra={"transaction_id": t.saga_id},
    )


class SagaNotFound(KeyError):
    pass


class _Fresh(NamedTuple):
    """A saga this process has just created: its state (first intent logged) and parameters."""

    definition: SagaDefinition
    state: SagaState
    params: dict[str, Any]


def _intent(call: Call) -> SagaEvent:
    return SagaEvent(
        EventKind.OPERATION_STARTED,
        at=_now(),
        step=call.step.name,
        role=call.role,
        operation=call.operation,
    )


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
        observers: Sequence[Observer] = (log_transition,),
        worker_id: str | None = None,
        lease_ttl: float = 10.0,
        max_sagas: int = 1000,
    ) -> None:
        self.log = log
        self._participant = participant
        self._definitions = definitions
        self._forward = forward
        self._settle = settle
        self._observers = list(observers)
        self._tasks: dict[str, asyncio.Task[SagaState]] = {}
        self.worker_id = worker_id or default_worker_id()
        self._max_sagas = max_sagas
        self._leases = LeaseBook(log, owner=self.worker_id, ttl=lease_ttl)

    # -- starting and waiting -------------------------------------------------------------

    async def start(
        self, definition: str, params: dict[str, Any], *, saga_id: str | None = None
    ) -> tuple[str, bool]:
        """Log a new saga and start driving it; an existing id with the same request is reused.

        Returns (saga id, created). Raises IdempotencyKeyReused for an id already used for a
        different request.
        """
        if definition not in self._definitions:
            raise KeyError(f"unknown saga definition {definition!r}")
        saga_id = saga_id or uuid.uuid4().hex
        saga = self._definitions[definition]
        # The start and the first operation's intent go to disk together, in one write.
        events = [SagaEvent(EventKind.STARTED, at=_now())]
        started = state = replay(saga, events)
        if (call := next_action(saga, state)) is not None:
            events.append(_intent(call))
            state = apply(saga, state, events[-1])
        lease = await self._leases.take(
            lambda: self.log.create(
                saga_id=saga_id,
                definition=definition,
                params=params,
                events=events,
                status=state.status,
                owner=self.worker_id,
                ttl=self._leases.ttl,
            )
        )
        if lease is not None:
            # Observers see the first intent, as before (the start itself is not a transition).
            for intent in events[1:]:
                self._notify(saga_id, saga, intent, started.status, state.status)
            self._ensure_driving(saga_id, _Fresh(saga, state, params))
            return saga_id, True
        existing = await self.log.summary(saga_id)
        assert existing is not None
        if existing.definition != definition or existing.params != params:
            raise IdempotencyKeyReused(
                f"transaction id {saga_id!r} was already used for a different request"
            )
        self._ensure_driving(saga_id)
        return saga_id, False

    async def run(
        self, definition: str, params: dict[str, Any], *, saga_id: str | None = None
    ) -> tuple[str, SagaState]:
        saga_id, _ = await self.start(definition, params, saga_id=saga_id)
        return saga_id, await self.drive(saga_id)

    async def drive(self, saga_id: str) -> SagaState:
        """Drive the saga until it is terminal or parked (joining a driver already running)."""
        return await asyncio.shield(self._ensure_driving(saga_id))

    async def wait(self, saga_id: str, timeout: float) -> bool:
        """True if the saga's driver finished within `timeout` seconds."""
        task = self._tasks.get(saga_id)
        if task is None:
            return True
        done, _ = await asyncio.wait({task}, timeout=timeout)
        return bool(done)

    async def outcome(self, saga_id: str, timeout: float) -> SagaState | None:
        """The state this process's driver of the saga ends with, if it ends within `timeout`
        seconds; None if no driver runs here, it is still running, or it failed. The state holds
        every event (`history`), so the caller can show the saga without reading the log."""
        task = self._tasks.get(saga_id)
        if task is None or not await self.wait(saga_id, timeout):
            return None
        if task.cancelled() or task.exception() is not None:
            return None
        return task.result()

    async def get(self, saga_id: str) -> StoredSaga:
        stored = await self.log.load(saga_id)
        if stored is None:
            raise SagaNotFound(saga_id)
        return stored

    def state_of(self, stored: StoredSaga) -> SagaState:
        return replay(self._definitions[stored.definition], stored.events)

    async def recover(self) -> dict[str, int]:
        """Claim and drive every saga left unsettled by a crash; returns final status counts.

        Claims come in batches of at most `max_sagas` leases, so this repeats until a claim
        finds nothing left (sagas another live worker holds are not taken)."""
        counts: dict[str, int] = {}
        # Each batch is driven to the end (and its leases released) before the next claim.
        while ids := await self.claim(include_own=True):
            for state in await asyncio.gather(*(self.drive(i) for i in ids)):
                counts[str(state.status)] = counts.get(str(state.status), 0) + 1
        return counts

    async def claim(self, *, include_own: bool = False) -> list[str]:
        """Renew the leases this worker holds, then claim and start driving free sagas.

        `include_own` (start-up only) also takes sagas leased under this worker's id, left by a
        previous process with the same stable id: that is crash recovery without waiting."""
        for saga_id in await self._leases.renew():
            # Its driver stops at its next step (LeaseLost); nothing to cancel here.
            logger.warning(
                "saga %s: lease lost (LeaseLost) to another worker",
                saga_id,
                extra={"transaction_id": saga_id},
            )
        room = self._max_sagas - len(self._leases)
        if room <= 0:
            return []
        leases = await self._leases.claim(limit=room, include_own=include_own)
        for lease in leases:
            self._ensure_driving(lease.saga_id)
        if include_own:
            logger.info("recovery: %d unsettled saga(s) claimed", len(leases))
        elif leases:
            logger.info("claimed %d saga(s) with free or expired leases", len(leases))
        return [lease.saga_id for lease in leases]

    async def work(self, *, interval: float) -> None:
        """The worker loop: recovery first, then renew and claim every `interval` seconds."""
        recovered = False
        while True:
            try:
                await self.claim(include_own=not recovered)
                recovered = True
            except Exception as exc:  # a database hiccup must not end the loop
                logger.warning("lease maintenance failed: %s", exc)
            await asyncio.sleep(interval)

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        await self._leases.release_all()

    async def _append(
        self, saga_id: str, events: Sequence[SagaEvent], status: str, *, release: bool = False
    ) -> None:
        lease = await self._leases.current(saga_id)
        try:
            await self.log.append(saga_id, events, status=status, lease=lease, release=release)
        except LeaseLost:
            self._leases.forget(saga_id, lease)
            raise
        if release:
            self._leases.forget(saga_id, lease)

    # -- operator actions ------------------------------------------------------------------

    async def retry(self, saga_id: str, *, note: str | None = None, wait: bool = True) -> SagaState:
        """Resume a parked saga; with `wait=False` return once it is resumed, still driving."""
        state = await self._operator(saga_id, EventKind.OPERATOR_RETRY, note)
        if not wait:
            self._ensure_driving(saga_id)
            return state
        return await self.drive(saga_id)

    async def resolve(self, saga_id: str, *, note: str | None = None) -> SagaState:
        return await self._operator(saga_id, EventKind.OPERATOR_RESOLVE, note)

    async def _operator(self, saga_id: str, kind: EventKind, note: str | None) -> SagaState:
        await self.get(saga_id)  # SagaNotFound (404) before anything else
        acquired = saga_id not in self._leases
        if acquired and await self._leases.acquire(saga_id) is None:
            raise InvalidTransition(
                f"saga {saga_id} is being driven by another worker; try again later"
            )
        try:
            stored = await self.get(saga_id)  # read after taking the lease: nobody else writes
            definition = self._definitions[stored.definition]
            state = replay(definition, stored.events)
            event = SagaEvent(kind, at=_now(), note=note)
            state = await self._save(saga_id, definition, state, [event])
        except BaseException:
            if acquired:  # e.g. InvalidTransition: a lease nobody drives would strand the saga
                await self._leases.release(saga_id)
            raise
        if kind is not EventKind.OPERATOR_RETRY and saga_id not in self._tasks:
            await self._leases.release(saga_id)
        return state

    # -- the driver ------------------------------------------------------------------------

    def _ensure_driving(self, saga_id: str, fresh: _Fresh | None = None) -> asyncio.Task[SagaState]:
        task = self._tasks.get(saga_id)
        if task is None:
            task = asyncio.create_task(self._drive(saga_id, fresh), name=f"saga-{saga_id}")
            self._tasks[saga_id] = task
            task.add_done_callback(lambda _: self._tasks.pop(saga_id, None))
        return task

    async def _drive(self, saga_id: str, fresh: _Fresh | None = None) -> SagaState:
        """`fresh`: the saga was just created here, under our lease, with its first intent
        logged; nothing needs reading back."""
        try:
            if fresh is not None:
                state = await self._drive_under_lease(
                    saga_id, fresh.definition, fresh.state, fresh.params, intent_logged=True
                )
            else:
                stored = await self.get(saga_id)
                definition = self._definitions[stored.definition]
                state = replay(definition, stored.events)
                if next_action(definition, state) is None:
                    await self._leases.release(saga_id)
                    return state
                if saga_id not in self._leases:
                    if await self._leases.acquire(saga_id) is None:
                        return state  # another worker holds it and drives it
                    state = self.state_of(await self.get(saga_id))  # what the last holder wrote
                state = await self._drive_under_lease(saga_id, definition, state, stored.params)
        except asyncio.CancelledError:
            raise  # shutting down: `close` releases the lease for an immediate takeover
        except LeaseLost as exc:
            logger.warning(
                "saga %s: lease lost (LeaseLost), stopped driving: %s",
                saga_id,
                exc,
                extra={"transaction_id": saga_id},
            )
            return self.state_of(await self.get(saga_id))
        except BaseException:
            # Stop renewing: the lease expires and the saga is claimed again (maybe by us).
            self._leases.forget(saga_id)
            raise
        await self._leases.release(saga_id)  # a no-op when the last write released it
        return state

    async def _drive_under_lease(
        self,
        saga_id: str,
        definition: SagaDefinition,
        state: SagaState,
        params: dict[str, Any],
        *,
        intent_logged: bool = False,
    ) -> SagaState:
        while True:
            try:
                return await self._drive_leased(saga_id, definition, state, params, intent_logged)
            except LeaseLost:
                if saga_id not in self._leases:
                    raise
                # Refused under a stale fence while this worker holds a newer lease (its own
                # start-up claim re-leased the saga): carry on from the log under the new one.
                state = self.state_of(await self.get(saga_id))
                intent_logged = False

    async def _drive_leased(
        self,
        saga_id: str,
        definition: SagaDefinition,
        state: SagaState,
        params: dict[str, Any],
        intent_logged: bool = False,
    ) -> SagaState:
        """`intent_logged`: the first call's intent is already on disk (written by `start`)."""
        unsaved: list[SagaEvent] = []
        while (call := next_action(definition, state)) is not None:
            if intent_logged:
                intent_logged = False
            else:
                intent = _intent(call)
                state = self._apply(saga_id, definition, state, [intent])
                await self._append(saga_id, [*unsaved, intent], state.status)
            outcome, unsaved = await self._perform(saga_id, params, call, state.status)
            state = self._apply(saga_id, definition, state, outcome)
        if unsaved:  # the last write also gives the lease up
            await self._append(saga_id, unsaved, state.status, release=True)
        return state

    async def _perform(
        self, saga_id: str, params: dict[str, Any], call: Call, status: str
    ) -> tuple[list[SagaEvent], list[SagaEvent]]:
        """All attempts of one operation: (every event, the events not logged yet). An unknown
        attempt is logged before the wait for its retry; the last attempt is left to the caller,
        which writes it with the next intent (one write fewer when an unknown is given up)."""
        policy = self._forward if call.role is Role.ACTION else self._settle
        events: list[SagaEvent] = []
        logged = 0
        body = call.step.body(params)

        async def before_retry(_: CallResult) -> None:
            nonlocal logged
            await self._append(saga_id, events[logged:], status)
            logged = len(events)

        async def attempt(number: int) -> CallResult:
            await self._leases.current(saga_id)  # never call for a saga no longer held
            started = _now()
            result = await self._participant.call(
                service=call.step.service,
                operation=call.operation,
                transaction_id=saga_id,
                body=body,
                timeout=policy.attempt_timeout,
            )
            event = SagaEvent(
                EventKind.ATTEMPT,
                at=_now(),
                step=call.step.name,
                role=call.role,
                operation=call.operation,
                outcome=result.outcome,
                attempt=number,
                status_code=result.status_code,
                error=result.error,
                result=result.result,
                started_at=started,
            )
            events.append(event)
            return result

        final = await policy.run(attempt, before_retry)
        if final.outcome is Outcome.UNKNOWN:
            events.append(
                SagaEvent(
                    EventKind.RETRIES_EXHAUSTED,
                    at=_now(),
                    step=call.step.name,
                    role=call.role,
                    operation=call.operation,
                )
            )
        return events, events[logged:]

    async def _save(
        self, saga_id: str, definition: SagaDefinition, state: SagaState, events: list[SagaEvent]
    ) -> SagaState:
        new = self._apply(saga_id, definition, state, events)
        await self._append(saga_id, events, new.status)
        return new

    def _apply(
        self, saga_id: str, definition: SagaDefinition, state: SagaState, events: list[SagaEvent]
    ) -> SagaState:
        for event in events:
            before = state.status
            state = apply(definition, state, event)
            self._notify(saga_id, definition, event, before, state.status)
        return state

    def _notify(
        self, saga_id: str, definition: SagaDefinition, event: SagaEvent, before: str, after: str
    ) -> None:
        if self._observers:
            transition = SagaTransition(saga_id, definition.name, event, before, after)
            for observer in self._observers:
                observer(transition)
