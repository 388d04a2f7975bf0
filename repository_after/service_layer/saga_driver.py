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
(re)issue. Every call of one saga carries the saga id as its idempotency key.

Leases: the driver acts only while this worker holds the saga's lease (`LeaseBook`). Every write
carries the lease and is refused (`LeaseLost`) once another worker has taken over; before each
remote call the driver also checks that the lease has not lapsed, so a worker that lost a saga
stops at once and makes no further call. Calls re-sent by the new owner carry the same
idempotency key, and the account service's tombstones refuse late deliveries, so a takeover is
as safe as a crash. One case is not a takeover: this worker's own start-up claim re-leases the
sagas left under its id, which bumps the fence of a saga it is driving; a write in flight under
the old fence is refused, and the driver restarts from the log under the new lease
(`_run_under_own_newest_lease`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping, Sequence
from functools import partial
from typing import Any, NamedTuple

from repository_after.domain.saga import (
    Call,
    EventKind,
    Role,
    SagaDefinition,
    SagaEvent,
    SagaState,
    next_action,
    replay,
)
from repository_after.service_layer.clock import utc_now as _now
from repository_after.service_layer.leases import LeaseBook
from repository_after.service_layer.operation_attempts import perform
from repository_after.service_layer.retry import RetryPolicy
from repository_after.service_layer.saga_ports import LeaseLost, Participant, SagaLog, StoredSaga
from repository_after.service_layer.transitions import LOGGER_NAME, Observer, apply_observed

logger = logging.getLogger(LOGGER_NAME)


class SagaNotFound(KeyError):
    pass


class FreshSaga(NamedTuple):
    """A saga this process has just created: its state (first intent logged) and parameters."""

    definition: SagaDefinition
    state: SagaState
    params: dict[str, Any]


def intent(call: Call) -> SagaEvent:
    return SagaEvent(
        EventKind.OPERATION_STARTED,
        at=_now(),
        step=call.step.name,
        role=call.role,
        operation=call.operation,
    )


class SagaDriver:
    def __init__(
        self,
        *,
        log: SagaLog,
        participant: Participant,
        leases: LeaseBook,
        definitions: Mapping[str, SagaDefinition],
        forward: RetryPolicy,
        settle: RetryPolicy,
        observers: Sequence[Observer],
    ) -> None:
        self._log = log
        self._participant = participant
        self._leases = leases
        self._definitions = definitions
        self._forward = forward
        self._settle = settle
        self._observers = observers

    async def load(self, saga_id: str) -> StoredSaga:
        stored = await self._log.load(saga_id)
        if stored is None:
            raise SagaNotFound(saga_id)
        return stored

    async def load_state(self, saga_id: str) -> SagaState:
        stored = await self.load(saga_id)
        return replay(self._definitions[stored.definition], stored.events)

    async def drive(self, saga_id: str, fresh: FreshSaga | None = None) -> SagaState:
        """Drive the saga until it is terminal or parked; the body of its driver task.

        `fresh`: the saga was just created here, under our lease, with its first intent logged;
        nothing needs reading back. Otherwise the log is read, and the lease taken if not held."""
        try:
            if fresh is not None:
                state = await self._run_under_own_newest_lease(
                    saga_id, fresh.definition, fresh.state, fresh.params, intent_logged=True
                )
            else:
                stored = await self.load(saga_id)
                definition = self._definitions[stored.definition]
                state = replay(definition, stored.events)
                if next_action(definition, state) is None:
                    await self._leases.release(saga_id)
                    return state
                if saga_id not in self._leases:
                    if await self._leases.acquire(saga_id) is None:
                        return state  # another worker holds it and drives it
                    state = await self.load_state(saga_id)  # what the last holder wrote
                state = await self._run_under_own_newest_lease(
                    saga_id, definition, state, stored.params
                )
        except asyncio.CancelledError:
            raise  # shutting down: `close` releases the lease for an immediate takeover
        except LeaseLost as exc:
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

    async def _run_under_own_newest_lease(
        self,
        saga_id: str,
        definition: SagaDefinition,
        state: SagaState,
        params: dict[str, Any],
        *,
        intent_logged: bool = False,
    ) -> SagaState:
        """`_run_operations`, restarted from the log when a write was refused under a fence
        this worker has itself replaced (its start-up claim re-leased the saga meanwhile).
        A refusal with no newer lease held here is a takeover: LeaseLost goes up."""
        while True:
            try:
                return await self._run_operations(saga_id, definition, state, params, intent_logged)
            except LeaseLost:
                if saga_id not in self._leases:
                    raise
                state = await self.load_state(saga_id)
                intent_logged = False

    async def _run_operations(
        self,
        saga_id: str,
        definition: SagaDefinition,
        state: SagaState,
        params: dict[str, Any],
        intent_logged: bool,
    ) -> SagaState:
        """The driving loop. `intent_logged`: the first call's intent is already on disk
        (written with the saga by `Orchestrator.start`)."""
        unsaved: list[SagaEvent] = []  # the last outcome, written with what follows it
        observers = self._observers
        while (call := next_action(definition, state)) is not None:
            if intent_logged:
                intent_logged = False
            else:
                event = intent(call)
                state = apply_observed(observers, saga_id, definition, state, (event,))
                await self._log_intent(saga_id, unsaved, event, state.status)
            outcome, unsaved = await perform(
                participant=self._participant,
                leases=self._leases,
                policy=self._forward if call.role is Role.ACTION else self._settle,
                saga_id=saga_id,
                params=params,
                call=call,
                log_before_retry=partial(self._log_attempts_before_retry, saga_id, state.status),
            )
            state = apply_observed(observers, saga_id, definition, state, outcome)
        if unsaved:
            await self._log_last_and_release(saga_id, unsaved, state.status)
        return state

    # -- the write points (each returns the write itself: no extra coroutine per write) ------

    def _log_intent(
        self, saga_id: str, unsaved: list[SagaEvent], event: SagaEvent, status: str
    ) -> Awaitable[None]:
        """Rule 1 (and 3): the intent, durably before its call, after the previous outcome."""
        return self.write(saga_id, [*unsaved, event], status)

    def _log_attempts_before_retry(
        self, saga_id: str, status: str, attempts: list[SagaEvent]
    ) -> Awaitable[None]:
        """Rule 2: unknown attempts, before the wait for the retry."""
        return self.write(saga_id, attempts, status)

    def _log_last_and_release(
        self, saga_id: str, events: list[SagaEvent], status: str
    ) -> Awaitable[None]:
        """Rule 3 at the end: the last outcome and the settled status; gives the lease up."""
        return self.write(saga_id, events, status, release=True)

    async def write(
        self, saga_id: str, events: Sequence[SagaEvent], status: str, *, release: bool = False
    ) -> None:
        """Append under the lease held (LeaseLost if it is gone, lapsed and lost, or refused)."""
        lease = await self._leases.current(saga_id)
        try:
            await self._log.append(saga_id, events, status=status, lease=lease, release=release)
        except LeaseLost:
            self._leases.forget(saga_id, lease)  # keeps a newer lease taken meanwhile
            raise
        if release:
            self._leases.forget(saga_id, lease)

    async def save(
        self, saga_id: str, definition: SagaDefinition, state: SagaState, events: list[SagaEvent]
    ) -> SagaState:
        """Apply events (e.g. an operator's) and write them; the new state."""
        new = apply_observed(self._observers, saga_id, definition, state, events)
        await self.write(saga_id, events, new.status)
        return new
