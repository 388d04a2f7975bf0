"""The imperative shell around the saga state machine: log intent, call, log outcome.

Write-ahead discipline, per remote operation:
1. the `operation_started` intent is appended durably *before* the call (together with the
   outcome of the previous operation, which may safely wait until then: if we crash first,
   recovery re-sends the same call with the same key and the participant replays its answer);
2. every unknown attempt is appended as it happens (history for operators);
3. the final outcome is applied to the in-memory state at once and written with the next intent,
   or with the terminal status when the saga ends.
So after a crash at any instant, folding the log gives a state whose next action is safe to
(re)issue. Every call of one saga carries the saga id as its idempotency key.

One driver per saga per process (`_tasks`). Several processes sharing one log need leases (see
the PostgreSQL issue); until then, run one orchestrator per saga log.

Transitions are observable: each applied event is passed to the `observers` as a
`SagaTransition` (the default observer logs it with the transaction id).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from repository_after.domain.errors import IdempotencyKeyReused
from repository_after.domain.saga import (
    Call,
    EventKind,
    Outcome,
    Role,
    SagaDefinition,
    SagaEvent,
    SagaState,
    apply,
    next_action,
    replay,
)
from repository_after.service_layer.retry import RetryPolicy
from repository_after.service_layer.saga_ports import (
    CallResult,
    Participant,
    SagaLog,
    StoredSaga,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SagaTransition:
    saga_id: str
    definition: str
    event: SagaEvent
    before: str
    after: str


Observer = Callable[[SagaTransition], None]


def log_transition(t: SagaTransition) -> None:
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


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


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
    ) -> None:
        self.log = log
        self._participant = participant
        self._definitions = definitions
        self._forward = forward
        self._settle = settle
        self._observers = list(observers)
        self._tasks: dict[str, asyncio.Task[SagaState]] = {}

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
        started = SagaEvent(EventKind.STARTED, at=_now())
        created = await self.log.create(
            saga_id=saga_id, definition=definition, params=params, event=started
        )
        if not created:
            existing = await self.log.summary(saga_id)
            assert existing is not None
            if existing.definition != definition or existing.params != params:
                raise IdempotencyKeyReused(
                    f"transaction id {saga_id!r} was already used for a different request"
                )
        self._ensure_driving(saga_id)
        return saga_id, created

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

    async def get(self, saga_id: str) -> StoredSaga:
        stored = await self.log.load(saga_id)
        if stored is None:
            raise SagaNotFound(saga_id)
        return stored

    def state_of(self, stored: StoredSaga) -> SagaState:
        return replay(self._definitions[stored.definition], stored.events)

    async def recover(self, *, concurrency: int = 64) -> dict[str, int]:
        """Drive every saga the log holds unsettled (after a crash); returns final status counts."""
        ids = await self.log.unsettled_ids()
        logger.info("recovery: %d unsettled saga(s)", len(ids))
        gate = asyncio.Semaphore(concurrency)
        counts: dict[str, int] = {}

        async def one(saga_id: str) -> None:
            async with gate:
                state = await self.drive(saga_id)
            status = str(state.status)
            counts[status] = counts.get(status, 0) + 1

        await asyncio.gather(*(one(i) for i in ids))
        return counts

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    # -- operator actions ------------------------------------------------------------------

    async def retry(self, saga_id: str, *, note: str | None = None) -> SagaState:
        await self._operator(saga_id, EventKind.OPERATOR_RETRY, note)
        return await self.drive(saga_id)

    async def resolve(self, saga_id: str, *, note: str | None = None) -> SagaState:
        return await self._operator(saga_id, EventKind.OPERATOR_RESOLVE, note)

    async def _operator(self, saga_id: str, kind: EventKind, note: str | None) -> SagaState:
        stored = await self.get(saga_id)
        definition = self._definitions[stored.definition]
        state = replay(definition, stored.events)
        return await self._save(saga_id, definition, state, [SagaEvent(kind, at=_now(), note=note)])

    # -- the driver ------------------------------------------------------------------------

    def _ensure_driving(self, saga_id: str) -> asyncio.Task[SagaState]:
        task = self._tasks.get(saga_id)
        if task is None:
            task = asyncio.create_task(self._drive(saga_id), name=f"saga-{saga_id}")
            self._tasks[saga_id] = task
            task.add_done_callback(lambda _: self._tasks.pop(saga_id, None))
        return task

    async def _drive(self, saga_id: str) -> SagaState:
        stored = await self.get(saga_id)
        definition = self._definitions[stored.definition]
        state = replay(definition, stored.events)
        unsaved: list[SagaEvent] = []
        while (call := next_action(definition, state)) is not None:
            intent = SagaEvent(
                EventKind.OPERATION_STARTED,
                at=_now(),
                step=call.step.name,
                role=call.role,
                operation=call.operation,
            )
            state = self._apply(saga_id, definition, state, [intent])
            await self.log.append(saga_id, [*unsaved, intent], status=state.status)
            outcome = await self._perform(saga_id, stored.params, call, state.status)
            state = self._apply(saga_id, definition, state, outcome)
            # Unknown attempts are already logged; the decisive last event is not yet.
            unsaved = [outcome[-1]]
        if unsaved:
            await self.log.append(saga_id, unsaved, status=state.status)
        return state

    async def _perform(
        self, saga_id: str, params: dict[str, Any], call: Call, status: str
    ) -> list[SagaEvent]:
        """All attempts of one operation; unknown ones are logged as they happen."""
        policy = self._forward if call.role is Role.ACTION else self._settle
        events: list[SagaEvent] = []
        body = call.step.body(params)

        async def attempt(number: int) -> CallResult:
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
            if result.outcome is Outcome.UNKNOWN:
                await self.log.append(saga_id, [event], status=status)
            return result

        final = await policy.run(attempt)
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
        return events

    async def _save(
        self, saga_id: str, definition: SagaDefinition, state: SagaState, events: list[SagaEvent]
    ) -> SagaState:
        new = self._apply(saga_id, definition, state, events)
        await self.log.append(saga_id, events, status=new.status)
        return new

    def _apply(
        self, saga_id: str, definition: SagaDefinition, state: SagaState, events: list[SagaEvent]
    ) -> SagaState:
        for event in events:
            before = state.status
            state = apply(definition, state, event)
            if self._observers:
                transition = SagaTransition(saga_id, definition.name, event, before, state.status)
                for observer in self._observers:
                    observer(transition)
        return state
