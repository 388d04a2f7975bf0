"""The saga state machine: pure data and two functions, `apply` and `next_action`.

A saga definition is an ordered list of steps. Each step names a remote action, and optionally
- a `compensation` that undoes it (safe to call even if the action never landed: the participant
  leaves a tombstone), and
- a `settlement` that decides an action whose outcome stayed unknown after every retry (the
  participant answers whether the action landed, and fences it out if it did not).

Rules, for every step in order:
- succeeded            -> the step is applied; move on (the last one completes the saga);
- rejected (definite)  -> nothing of this step happened; compensate what was applied, or end
                          `rejected` if nothing was;
- unknown              -> retried with the same key by the shell; once retries run out, settle if
                          the step has a settlement, else count it as possibly applied and
                          compensate it with the rest (tombstones make that safe), else park;
- compensations        -> retried until they succeed; a definite refusal or exhausted retries
                          park the saga in `failed_needs_attention` for an operator;
- parked (an event)    -> a worker that cannot resume the saga (its definition version is not
                          registered there) parks it as it stands, from any state not at rest;
                          an operator's retry resumes exactly where it stopped.
A retriable step (after the point of no return, `StepKind`) is never compensated: a definite
refusal or exhausted retries park the saga. A successful answer that lacks a field a later
step's request needs parks it too (the action landed; guessing the field is not an option).
Entering `compensating` is irreversible: forward events after it are invalid transitions.

The imperative shell (service_layer.saga_driver) logs each event before acting on its state, so
folding the log (`replay`) always reproduces the state a crash interrupted.

The definitions and events (`Step`, `SagaDefinition`, `Call`, `SagaEvent`, the statuses and
enums) live in `domain.saga_definition` and are re-exported here, where callers import them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, NamedTuple

from repository_after.domain.saga_definition import (
    AT_REST,
    TERMINAL,
    Call,
    EventKind,
    FromResult,
    InvalidDefinition,
    InvalidTransition,
    KeyScheme,
    Outcome,
    SagaDefinition,
    SagaEvent,
    SagaStatus,
    Step,
    StepKind,
    StepRole,
)

__all__ = [
    "AT_REST",
    "TERMINAL",
    "Call",
    "EventKind",
    "FromResult",
    "InvalidDefinition",
    "InvalidTransition",
    "KeyScheme",
    "Outcome",
    "Phase",
    "SagaDefinition",
    "SagaEvent",
    "SagaState",
    "SagaStatus",
    "Step",
    "StepKind",
    "StepRole",
    "apply",
    "next_action",
    "replay",
    "step_results",
]


class Phase(StrEnum):
    FORWARD = "forward"
    COMPENSATING = "compensating"


class SagaState(NamedTuple):
    """The state folded from a saga's events. A named tuple: immutable, and each transition
    (`_replace`) is cheap."""

    status: str = SagaStatus.STARTED
    phase: Phase = Phase.FORWARD
    cursor: int = 0
    settling: bool = False
    applied: tuple[int, ...] = ()
    to_compensate: tuple[int, ...] = ()
    parked_reason: str | None = None
    history: tuple[SagaEvent, ...] = ()

    @property
    def at_rest(self) -> bool:
        return self.status in AT_REST


_HISTORY = len(SagaState._fields) - 1
assert SagaState._fields[_HISTORY] == "history"  # `apply` builds it last


def next_action(definition: SagaDefinition, state: SagaState) -> Call | None:
    if state.at_rest:
        return None
    if state.phase is Phase.COMPENSATING:
        return definition.call(state.to_compensate[0], StepRole.COMPENSATION)
    return definition.call(state.cursor, StepRole.SETTLEMENT if state.settling else StepRole.ACTION)


def replay(definition: SagaDefinition, events: Iterable[SagaEvent]) -> SagaState:
    state = SagaState()
    for event in events:
        state = apply(definition, state, event)
    return state


def apply(definition: SagaDefinition, state: SagaState, event: SagaEvent) -> SagaState:
    new = _transition(definition, state, event)
    # `new._replace(history=...)`, built directly: this runs for every event of every saga, and
    # `_replace` costs 2-3 times as much (docs/performance.md, seventh round; re-measured at the
    # split into saga_definition.py: 0.6-0.8 us against 2.0-2.3 us, a quarter of `apply`). The
    # assert beside `_HISTORY` fails at import if a field is ever added after `history`.
    return tuple.__new__(SagaState, (*new[:_HISTORY], (*state.history, event)))


def _transition(definition: SagaDefinition, state: SagaState, event: SagaEvent) -> SagaState:
    kind = event.kind
    if kind is EventKind.STARTED:
        if state.history:
            raise InvalidTransition("a saga starts once")
        return state
    if kind is EventKind.OPERATOR_RETRY:
        if state.status != SagaStatus.FAILED_NEEDS_ATTENTION:
            raise InvalidTransition(f"only a parked saga can be retried, not {state.status}")
        return _resume(definition, state)
    if kind is EventKind.OPERATOR_RESOLVE:
        if state.status != SagaStatus.FAILED_NEEDS_ATTENTION:
            raise InvalidTransition(f"only a parked saga can be resolved, not {state.status}")
        return state._replace(status=SagaStatus.RESOLVED)
    if kind is EventKind.PARKED:
        if state.at_rest:
            raise InvalidTransition(f"only a saga in progress can be parked, not {state.status}")
        return _park(state, event.note or "parked")
    call = next_action(definition, state)
    if call is None:
        raise InvalidTransition(f"{kind.value} on a {state.status} saga")
    if (event.step, event.role) != (call.step.name, call.role):
        raise InvalidTransition(
            f"expected {call.step.name}/{call.role.value}, got {event.step}/{event.role}"
        )
    if kind is EventKind.OPERATION_STARTED:
        return state._replace(status=_running_status(call))
    if kind is EventKind.RETRIES_EXHAUSTED:
        return _exhausted(state, call)
    if kind is EventKind.ATTEMPT:
        return _attempted(definition, state, call, event)
    raise InvalidTransition(f"unknown event {kind}")


def _running_status(call: Call) -> str:
    if call.role is StepRole.COMPENSATION:
        return SagaStatus.COMPENSATING
    return call.step.running_status


def _resume(definition: SagaDefinition, state: SagaState) -> SagaState:
    resumed = state._replace(status=SagaStatus.STARTED, parked_reason=None)
    call = next_action(definition, resumed)
    assert call is not None
    return resumed._replace(status=_running_status(call))


def _attempted(
    definition: SagaDefinition, state: SagaState, call: Call, event: SagaEvent
) -> SagaState:
    if event.outcome is Outcome.UNKNOWN:
        return state
    succeeded = event.outcome is Outcome.SUCCEEDED
    if call.role is StepRole.ACTION:
        if succeeded:
            missing = definition.result_fields(call.step) - set(event.data or ())
            if missing:
                return _park(
                    state, f"{call.operation} on {call.step.name}: answer lacks {sorted(missing)}"
                )
            return _advance(definition, state, call)
        if call.step.kind is StepKind.RETRIABLE:
            return _park(state, f"{call.operation} on {call.step.name} refused: {event.error}")
        return _step_failed(state)
    if call.role is StepRole.SETTLEMENT:
        if not succeeded:
            return _park(state, f"settlement {call.operation} refused: {event.error}")
        if event.result in call.step.landed_statuses:
            return _advance(definition, state, call)
        if event.result in call.step.fenced_statuses:
            return _step_failed(state)
        # Neither answer: guessing could refund a credit that landed. An operator decides.
        return _park(state, f"settlement {call.operation} answered {event.result!r}")
    if not succeeded:
        return _park(state, f"compensation {call.operation} refused: {event.error}")
    remaining = state.to_compensate[1:]
    if remaining:
        return state._replace(to_compensate=remaining)
    return state._replace(to_compensate=(), status=SagaStatus.COMPENSATED)


def _exhausted(state: SagaState, call: Call) -> SagaState:
    if call.role is StepRole.ACTION:
        if call.step.settlement is not None:
            return state._replace(settling=True)
        if call.step.compensation is not None:
            # Possibly applied: compensating it is safe (a tombstone fences a late arrival).
            return _compensate(state._replace(applied=(*state.applied, call.step_index)))
    return _park(state, f"{call.operation} on {call.step.name}: outcome unknown after retries")


def _advance(definition: SagaDefinition, state: SagaState, call: Call) -> SagaState:
    applied = state.applied
    if call.step.compensation is not None:
        applied = (*applied, call.step_index)
    cursor = call.step_index + 1
    status = SagaStatus.COMPLETED if cursor == len(definition.steps) else state.status
    return state._replace(cursor=cursor, settling=False, applied=applied, status=status)


def _step_failed(state: SagaState) -> SagaState:
    if not state.applied:
        return state._replace(status=SagaStatus.REJECTED, settling=False)
    return _compensate(state)


def _compensate(state: SagaState) -> SagaState:
    return state._replace(
        phase=Phase.COMPENSATING,
        status=SagaStatus.COMPENSATING,
        settling=False,
        to_compensate=tuple(reversed(state.applied)),
    )


def _park(state: SagaState, reason: str) -> SagaState:
    return state._replace(status=SagaStatus.FAILED_NEEDS_ATTENTION, parked_reason=reason)


def step_results(history: Iterable[SagaEvent]) -> dict[str, Mapping[str, Any]]:
    """Step name -> the logged answer of its successful action (logged only for the steps whose
    answers later requests read: `SagaDefinition.result_fields`)."""
    return {
        event.step: event.data
        for event in history
        if event.step is not None
        and event.data is not None
        and event.kind is EventKind.ATTEMPT
        and event.role is StepRole.ACTION
        and event.outcome is Outcome.SUCCEEDED
    }
