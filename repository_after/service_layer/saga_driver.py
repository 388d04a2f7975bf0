"""Drives ONE saga under its lease: log the intent, call, log the outcome, until none is left.

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
compensated is five (docs/performance.md). The write points are named after these rules:
`_log_intent` (1, and 3 when another operation follows), `_log_attempts_before_retry` (2) and
`_log_last_and_release` (3 at the end); the attempts of one operation are made by
`operation_attempts.perform`.
So after a crash at any instant, folding the log gives a state whose next action is safe to
(re)issue. Every call of one step carries that step's idempotency key (`SagaDefinition.key`).
A saga is driven with the definition it started under; one this server lacks is never driven
here (`resumption.Unresumable`): another shape under its version is parked at once, a version not
registered here is left, its lease unrenewed, to a server that has it, and parked only after
making no progress for the grace. Nothing is called either way.

Leases: the driver acts only while this worker holds the saga's lease (`LeaseBook`). Every write
carries the lease and is refused (`LeaseLost`) once another worker has taken over; before each
remote call the driver also checks that the lease has not lapsed, so a worker that lost a saga
stops at once and makes no further call. Calls re-sent by the new owner carry the same
idempotency key, and the account service's tombstones refuse late deliveries, so a takeover is
as safe as a crash. The driver acts under the lease its view of the log was built under, or
that lease's direct successor: this worker's own start-up claim re-leases the sagas left under
its id, which bumps the fence of a saga it may be driving; nobody else can have written between
the two fences, so the driver adopts the new lease (a write refused under the old fence while
the claim ran is written again under the new one, `write`). A lease that skipped fences means
another worker held the saga meanwhile: the driver drops its view and drives the saga anew from
the log (`drive`), as a claim would.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from functools import partial
from typing import Any, NamedTuple

from repository_after.domain.saga import (
    SagaDefinition,
    SagaEvent,
    SagaState,
    StepRole,
    next_action,
    replay,
)
from repository_after.service_layer.leases import LeaseBook
from repository_after.service_layer.operation_attempts import intent, perform
from repository_after.service_layer.resumption import (
    UNRESUMABLE,
    DefinitionLookup,
    Unresumable,
    definition_of,
)
from repository_after.service_layer.retry import RetryPolicy
from repository_after.service_layer.saga_ports import (
    Lease,
    LeaseLost,
    Participant,
    SagaLog,
    StoredSaga,
)
from repository_after.service_layer.transitions import LOGGER_NAME, Observer, apply_observed

logger = logging.getLogger(LOGGER_NAME)


class SagaNotFound(KeyError):
    pass


class FreshSaga(NamedTuple):
    """A saga this process has just created: its state (first intent logged) and parameters."""

    definition: SagaDefinition
    state: SagaState
    params: dict[str, Any]
    lease: Lease


class SagaDriver:
    def __init__(
        self,
        *,
        log: SagaLog,
        participant: Participant,
        leases: LeaseBook,
        versions: DefinitionLookup,
        forward: RetryPolicy,
        settle: RetryPolicy,
        observers: Sequence[Observer],
        unknown_version_grace: float,
    ) -> None:
        """`unknown_version_grace`: seconds without progress after which a saga of a version
        not registered here is parked (`resumption`)."""
        self._log = log
        self._participant = participant
        self._leases = leases
        self._versions = versions
        self._forward = forward
        self._settle = settle
        self._observers = observers
        self._unresumable = Unresumable(
            log=log,
            leases=leases,
            observers=observers,
            grace=unknown_version_grace,
            write_and_release=lambda saga_id, events, status, lease: self.write(
                saga_id, events, status, lease=lease, release=True
            ),
        )

    async def load(self, saga_id: str) -> StoredSaga:
        stored = await self._log.load(saga_id)
        if stored is None:
            raise SagaNotFound(saga_id)
        return stored

    async def load_state(self, saga_id: str) -> SagaState:
        stored = await self.load(saga_id)
        return replay(definition_of(self._versions, stored), stored.events)

    async def drive(self, saga_id: str, fresh: FreshSaga | None = None) -> SagaState:
        """Drive the saga until it is terminal or parked; the body of its driver task.

        `fresh`: the saga was just created here, under our lease, with its first intent logged;
        nothing needs reading back. Otherwise the log is read, and the lease taken if not held."""
        try:
            if fresh is not None:
                state = await self._run_operations(
                    saga_id, fresh.definition, fresh.state, fresh.params, fresh.lease, True
                )
            else:
                lease = self._leases.held(saga_id)  # before the read: the view it is built under
                stored = await self.load(saga_id)
                try:
                    definition = definition_of(self._versions, stored)
                except UNRESUMABLE as exc:
                    return await self._unresumable.handle(stored, lease, exc)
                state = replay(definition, stored.events)
                if next_action(definition, state) is None:
                    await self._leases.release(saga_id)
                    return state
                if lease is None:
                    if (lease := await self._leases.acquire(saga_id)) is None:
                        if saga_id in self._leases:
                            # This process claimed it during the read (a start-up claim joins
                            # this very driver): drive it under that lease, from the log.
                            return await self.drive(saga_id)
                        return state  # another worker holds it and drives it
                    state = await self.load_state(saga_id)  # what the last holder wrote
                state = await self._run_operations(
                    saga_id, definition, state, stored.params, lease, False
                )
        except asyncio.CancelledError:
            raise  # shutting down: `close` releases the lease for an immediate takeover
        except LeaseLost as exc:
            if saga_id in self._leases:
                # Leased to this worker again after another worker held it (`LeaseBook`): the
                # state in hand may be stale, so drive it anew from the log, as a claim would.
                return await self.drive(saga_id)
            logger.warning(
                "saga %s: lease lost (LeaseLost), stopped driving: %s",
                saga_id,
                exc,
                extra={"transaction_id": saga_id},
            )
            return await self.load_state(saga_id)
        except BaseException:
            # Stop renewing: the lease expires and the saga is claimed again (maybe by us).
            self._leases.forget(saga_id)
            raise
        await self._leases.release(saga_id)  # a no-op when the last write released it
        return state

    async def _run_operations(
        self,
        saga_id: str,
        definition: SagaDefinition,
        state: SagaState,
        params: dict[str, Any],
        lease: Lease,
        intent_logged: bool,
    ) -> SagaState:
        """The driving loop, under `lease` (or its direct successor, adopted at a write).

        `intent_logged`: the first call's intent is already on disk (written with the saga by
        `Orchestrator.start`)."""
        unsaved: list[SagaEvent] = []  # the last outcome, written with what follows it
        observers = self._observers
        while (call := next_action(definition, state)) is not None:
            if intent_logged:
                intent_logged = False
            else:
                event = intent(call)
                state = apply_observed(observers, saga_id, definition, state, (event,))
                lease = await self._log_intent(saga_id, lease, unsaved, event, state.status)
            outcome, unsaved = await perform(
                participant=self._participant,
                leases=self._leases,
                lease=lease,
                policy=self._forward if call.role is StepRole.ACTION else self._settle,
                saga_id=saga_id,
                definition=definition,
                params=params,
                history=state.history,
                call=call,
                log_before_retry=partial(
                    self._log_attempts_before_retry, saga_id, lease, state.status
                ),
            )
            state = apply_observed(observers, saga_id, definition, state, outcome)
        if unsaved:
            await self._log_last_and_release(saga_id, lease, unsaved, state.status)
        return state

    # -- the write points (each returns the write itself: no extra coroutine per write) ------

    def _log_intent(
        self, saga_id: str, lease: Lease, unsaved: list[SagaEvent], event: SagaEvent, status: str
    ) -> Awaitable[Lease]:
        """Rule 1 (and 3): the intent, durably before its call, after the previous outcome."""
        return self.write(saga_id, [*unsaved, event], status, lease=lease)

    def _log_attempts_before_retry(
        self, saga_id: str, lease: Lease, status: str, attempts: list[SagaEvent]
    ) -> Awaitable[Lease]:
        """Rule 2: unknown attempts, before the wait for the retry."""
        return self.write(saga_id, attempts, status, lease=lease)

    def _log_last_and_release(
        self, saga_id: str, lease: Lease, events: list[SagaEvent], status: str
    ) -> Awaitable[Lease]:
        """Rule 3 at the end: the last outcome and the settled status; gives the lease up."""
        return self.write(saga_id, events, status, lease=lease, release=True)

    async def write(
        self,
        saga_id: str,
        events: Sequence[SagaEvent],
        status: str,
        *,
        lease: Lease | None = None,
        release: bool = False,
    ) -> Lease:
        """Append under `lease` or its direct successor (any lease held, without one); returns
        the lease written under. LeaseLost if it is gone, lapsed and lost, or refused."""
        lease = await self._leases.current(saga_id, lease)
        while True:
            try:
                await self._log.append(saga_id, events, status=status, lease=lease, release=release)
                break
            except LeaseLost:
                # Refused under a fence this worker's own claim replaced during the write (the
                # start-up claim re-leases its sagas): nobody else wrote, so write it again.
                if (successor := self._leases.successor(saga_id, lease)) is None:
                    self._leases.forget(saga_id, lease)  # keeps a newer lease taken meanwhile
                    raise
                lease = successor
        if release:
            self._leases.forget(saga_id, lease)
        return lease

    async def save(
        self, saga_id: str, definition: SagaDefinition, state: SagaState, events: list[SagaEvent]
    ) -> SagaState:
        """Apply events (e.g. an operator's) and write them; the new state."""
        new = apply_observed(self._observers, saga_id, definition, state, events)
        await self.write(saga_id, events, new.status)
        return new
