"""A saga's course without a coordinator: the SAME state machine (`domain.saga`), folded from
the events the saga's messages carry.

In choreography a saga's course travels with it: each message carries the saga's definition key
(name, version, shape hash), its parameters and its history (the very events the orchestrator
would have logged). The service a message reaches folds the history (`replay`), finds the call
`next_action` names, performs it, and `react`s to its outcome: the outcome's events are applied,
and, if the saga goes on, the next call's intent is appended; the new history goes to the next
call's service, or, at rest, to the tracker alone. So every choice (forward, compensate last
first, settle the pivot, park) is `domain.saga`'s, and a choreographed saga takes the course an
orchestrated one takes for the same answers (tests/unit/test_choreography_course.py drives both
from one table of outcomes).

Invariants:
- a history is valid for the state machine (every event is applied, in order, by `apply`);
- one course at a time: a call is decided once, either by its outcome or by its time-out (the
  participant's fence, keyed by `ordinal`, lets only the first of the two go on), so a history
  only ever grows by its own suffix;
- `ordinal(history)` (how many intents it holds) names the pending call's turn: it is the same in
  the tracker's history (which may also hold operator events) and in the message's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from repository_after.domain.saga import (
    Call,
    EventKind,
    SagaDefinition,
    SagaEvent,
    SagaState,
    apply,
    next_action,
    replay,
)


class Reaction(NamedTuple):
    """What a service does after a call's outcome: the saga's new state and history (the
    outcome's events and, if it goes on, the next call's intent), and that next call."""

    state: SagaState
    history: tuple[SagaEvent, ...]
    next_call: Call | None


def intent_event(call: Call, *, at: str) -> SagaEvent:
    """The `operation_started` event of `call` (as the orchestrator logs it before a call)."""
    return SagaEvent(
        EventKind.OPERATION_STARTED,
        at=at,
        step=call.step.name,
        role=call.role,
        operation=call.operation,
    )


def exhausted_event(call: Call, *, at: str) -> SagaEvent:
    """A call that got no answer in its step's time: its outcome is unknown, as the orchestrator
    logs it once its retries run out (`retries_exhausted`)."""
    return SagaEvent(
        EventKind.RETRIES_EXHAUSTED,
        at=at,
        step=call.step.name,
        role=call.role,
        operation=call.operation,
    )


def ordinal(history: Sequence[SagaEvent]) -> int:
    """How many intents `history` holds: the turn of its pending call."""
    return sum(1 for event in history if event.kind is EventKind.OPERATION_STARTED)


def pending(definition: SagaDefinition, history: Sequence[SagaEvent]) -> tuple[SagaState, Call]:
    """The folded state and the call its last intent announced. ValueError if the history does
    not end waiting on a call (a saga at rest, or an intent missing): such a message is not one
    a service acts on."""
    state = replay(definition, history)
    call = next_action(definition, state)
    if call is None:
        raise ValueError(f"the saga is {state.status}: no call is pending")
    last = history[-1] if history else None
    if last is None or last.kind is not EventKind.OPERATION_STARTED:
        raise ValueError("the history does not end with the pending call's intent")
    if (last.step, last.role) != (call.step.name, call.role):
        raise ValueError(f"the last intent is not {call.step.name}/{call.role.value}")
    return state, call


def react(
    definition: SagaDefinition,
    state: SagaState,
    history: Sequence[SagaEvent],
    outcome: Sequence[SagaEvent],
    *,
    at: str,
    publisher: str | None = None,
) -> Reaction:
    """Apply `outcome` (an attempt, or a time-out's `retries_exhausted`) to the saga folded from
    `history` (`state`), then append the next call's intent, if any; the appended events name
    `publisher`, the service reacting (what the dashboard shows beside each event)."""
    events = list(history)
    for event in outcome:
        event = event._replace(publisher=publisher)
        state = apply(definition, state, event)
        events.append(event)
    call = next_action(definition, state)
    if call is not None:
        event = intent_event(call, at=at)._replace(publisher=publisher)
        state = apply(definition, state, event)
        events.append(event)
    return Reaction(state, tuple(events), call)


def start(definition: SagaDefinition, *, at: str, publisher: str | None = None) -> Reaction:
    """A new saga's first events: `started` and its first call's intent."""
    first = SagaEvent(EventKind.STARTED, at=at)
    return react(definition, replay(definition, ()), (), (first,), at=at, publisher=publisher)
