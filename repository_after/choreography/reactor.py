"""A participant's reaction to a course message, as the `Inbox` handler of its queue.

The inbox runs `handle(tx, message)` in ONE local transaction with the message's inbox row;
everything below goes through that `tx`, so the call's effect, its kit record, the turn's fence
and the next message's outbox row commit together, or none does.

For a `call` message (the history ends with this service's call's intent):
1. the definition it names (name, version, shape hash) must be run here, and the folded history
   must be waiting on a call of this service (else: raise, redelivered, dead-lettered);
2. the turn's fence (`choreography_turns`, per saga and `ordinal`): if the tracker's time-out
   won the turn, the late call still meets the kit's rules (its step's compensation or settlement
   ran here first, so the tombstone refuses it: 409, nothing changes) and nothing is published;
   else the turn is marked `performed`;
3. the call is decided by the service's kit rules (`Decide`) under the key orchestration uses
   (`SagaDefinition.key`), with the body built from the parameters and earlier answers; the
   answer is classified as the HTTP client classifies it (2xx succeeded; a definite 4xx
   rejected; anything else raises: redelivered, over the delivery limit dead-lettered);
4. `react` folds the attempt into the state machine and the next message is enqueued: the next
   call's (to its service) or, at rest, the `ended` one (to the tracker).
For a `timeout` message: if the turn is fenced already, nothing (the call was performed first;
its message is on its way); else the turn is marked `timed_out` and `retries_exhausted` is
folded: compensate, settle or park, exactly as the orchestrator after its last retry.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from repository_after.adapters.http_participant import classify
from repository_after.choreography.course import Course, Kind, Lookup
from repository_after.choreography.stores import Decide
from repository_after.domain.choreography import exhausted_event, ordinal, pending, react
from repository_after.domain.saga import (
    Call,
    EventKind,
    Outcome,
    SagaDefinition,
    SagaEvent,
    StepRole,
    step_results,
)
from repository_after.messaging.envelope import Message
from repository_after.messaging.outbox import enqueue
from repository_after.participant_kit.records import Answer
from repository_after.participant_kit.rules import Rejected
from repository_after.participant_kit.storage import Tx
from repository_after.service_layer.clock import utc_now
from repository_after.service_layer.saga_ports import CallResult

logger = logging.getLogger(__name__)

PERFORMED = "performed"
TIMED_OUT = "timed_out"


class NotOurs(Exception):
    """A message this service must not act on (misrouted, or its saga not waiting on us)."""


class UnknownOutcome(Exception):
    """The call's outcome is unknown (a 5xx, a storage failure): roll back and redeliver."""


class Reactor:
    """Service `service`'s reaction to its course messages; `handle` is its inbox handler."""

    def __init__(self, service: str, *, decide: Decide, lookup: Lookup, exchange: str) -> None:
        self.service = service
        self.decide = decide
        self.lookup = lookup
        self.exchange = exchange

    def handle(self, tx: Tx, message: Message) -> dict[str, Any]:
        course = Course.from_payload(message.payload)
        definition = course.resolve(self.lookup)
        try:
            state, call = pending(definition, course.history)
        except ValueError as exc:
            raise NotOurs(f"saga {course.saga_id}: {exc}") from None
        if call.step.service != self.service:
            raise NotOurs(f"saga {course.saga_id}: {call.operation} is {call.step.service}'s")
        turn = ordinal(course.history)
        decided = _turn(tx, course.saga_id, turn)
        if course.kind is Kind.TIMEOUT:
            if decided is not None:
                return {"ignored": f"turn {turn} was {decided}"}
            _mark(tx, course.saga_id, turn, TIMED_OUT)
            outcome = [exhausted_event(call, at=utc_now())]
        elif course.kind is Kind.CALL:
            if decided == TIMED_OUT:
                late = self._attempt(tx, definition, course, call, message.delivery_count)
                logger.info("saga %s: late %s fenced: %s", course.saga_id, call.operation, late)
                return {"fenced": TIMED_OUT, "status_code": late.status_code, "error": late.error}
            _mark(tx, course.saga_id, turn, PERFORMED)
            result = self._attempt(tx, definition, course, call, message.delivery_count)
            outcome = [_attempt_event(definition, call, result)]
        else:
            raise NotOurs(f"a {course.kind.value} message is the tracker's")
        reaction = react(
            definition, state, course.history, outcome, at=utc_now(), publisher=self.service
        )
        after = Course.of(
            course.saga_id,
            definition,
            course.params,
            reaction.history,
            Kind.ENDED if reaction.next_call is None else Kind.CALL,
        )
        service = None if reaction.next_call is None else reaction.next_call.step.service
        enqueue(tx, self.exchange, after.message(service=service, publisher=self.service))
        return {"status": reaction.state.status, "outcome": outcome[0].kind.value}

    def _attempt(
        self, tx: Tx, definition: SagaDefinition, course: Course, call: Call, delivery: int
    ) -> CallResult:
        key = definition.key(course.saga_id, call)
        body = call.step.body(course.params, step_results(course.history))
        try:
            answer = self.decide(tx, call.operation, key, body, delivery=delivery)
        except Rejected as refused:  # a kit rule's refusal (a fence, a key reused): definite
            return CallResult(Outcome.REJECTED, refused.status_code, refused.code)
        result = _classified(answer)
        if result.outcome is Outcome.UNKNOWN:
            raise UnknownOutcome(f"{call.operation} {key}: {result.status_code} {result.error}")
        return result


def _classified(answer: Answer) -> CallResult:
    return classify(answer.status_code, answer.body)


def _attempt_event(definition: SagaDefinition, call: Call, result: CallResult) -> SagaEvent:
    keep = call.role is StepRole.ACTION and bool(definition.result_fields(call.step))
    now = utc_now()
    return SagaEvent(
        EventKind.ATTEMPT,
        at=now,
        step=call.step.name,
        role=call.role,
        operation=call.operation,
        outcome=result.outcome,
        attempt=1,
        status_code=result.status_code,
        error=result.error,
        result=result.result,
        started_at=now,
        data=_data(result.body) if keep and result.outcome is Outcome.SUCCEEDED else None,
    )


def _data(body: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    return None if body is None else dict(body)


def _turn(tx: Tx, saga_id: str, turn: int) -> str | None:
    rows = tx.execute(
        "SELECT decided FROM choreography_turns WHERE saga_id = ? AND turn = ?", (saga_id, turn)
    )
    return str(rows[0][0]) if rows else None


def _mark(tx: Tx, saga_id: str, turn: int, decided: str) -> None:
    tx.execute(
        "INSERT INTO choreography_turns (saga_id, turn, decided, decided_at) VALUES (?, ?, ?, ?)",
        (saga_id, turn, decided, utc_now()),
    )
