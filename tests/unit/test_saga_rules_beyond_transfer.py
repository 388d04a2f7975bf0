"""The state machine's rules on definitions other than the transfer, and its exact refusals.

`TRANSFER` has one compensable step and ends at its settled step, so several rules never show
there: a step after a settled one (the saga must go on with that step's ACTION, not settle it),
compensating two steps in reverse order, a settled first step that is fenced (nothing to undo),
and the reasons a parked saga shows its operator. The folded state is `replay`'s answer; it is
asserted whole where a transition sets several fields. `InvalidTransition`'s message is the body
of the 409 an operator or client sees, so each refusal is asserted with its exact text.
"""

from __future__ import annotations

import pytest

from repository_after.domain.saga import (
    EventKind,
    FromResult,
    InvalidTransition,
    Outcome,
    Phase,
    SagaDefinition,
    SagaEvent,
    SagaState,
    SagaStatus,
    Step,
    StepKind,
    StepRole,
    apply,
    next_action,
    replay,
    step_results,
)

AT = "2026-01-01T00:00:00+00:00"
A, S, C = StepRole.ACTION, StepRole.SETTLEMENT, StepRole.COMPENSATION
OK, NO, UNK = Outcome.SUCCEEDED, Outcome.REJECTED, Outcome.UNKNOWN

RESERVE = Step(
    "reserve", "stock", "reserve", "reserving", {}, StepKind.COMPENSATABLE, compensation="unreserve"
)
CHARGE = Step(
    "charge",
    "pay",
    "charge",
    "charging",
    {},
    StepKind.COMPENSATABLE,
    compensation="refund",
    settlement="void_charge",
)
SHIP = Step("ship", "post", "ship", "shipping", {}, StepKind.PIVOT)
ORDER = SagaDefinition("order", (RESERVE, CHARGE, SHIP))
#: A settled FIRST step: fenced, it leaves nothing to compensate.
PAY = SagaDefinition("pay", (CHARGE,))


def started() -> SagaEvent:
    return SagaEvent(EventKind.STARTED, at=AT)


def intent(step: str, role: StepRole) -> SagaEvent:
    return SagaEvent(EventKind.OPERATION_STARTED, at=AT, step=step, role=role)


def attempt(
    step: str, role: StepRole, outcome: Outcome, *, result: str | None = None, error: str = ""
) -> SagaEvent:
    return SagaEvent(
        EventKind.ATTEMPT,
        at=AT,
        step=step,
        role=role,
        outcome=outcome,
        result=result,
        error=error or None,
    )


def exhausted(step: str, role: StepRole) -> SagaEvent:
    return SagaEvent(EventKind.RETRIES_EXHAUSTED, at=AT, step=step, role=role)


def reserved_then_charge_unknown() -> list[SagaEvent]:
    return [
        started(),
        intent("reserve", A),
        attempt("reserve", A, OK),
        intent("charge", A),
        attempt("charge", A, UNK),
        exhausted("charge", A),
        intent("charge", S),
    ]


def test_after_a_settled_step_lands_the_saga_goes_on_with_the_next_action() -> None:
    events = [*reserved_then_charge_unknown(), attempt("charge", S, OK, result="already_applied")]
    state = replay(ORDER, events)
    assert state == SagaState(
        status="charging",
        phase=Phase.FORWARD,
        cursor=2,
        settling=False,
        applied=(0, 1),
        to_compensate=(),
        parked_reason=None,
        history=tuple(events),
    )
    call = next_action(ORDER, state)
    assert call is not None
    assert (call.step.name, call.role, call.operation) == ("ship", A, "ship")


def test_two_applied_steps_are_compensated_last_first_and_then_the_saga_is_compensated() -> None:
    events = [
        *reserved_then_charge_unknown(),
        attempt("charge", S, OK, result="already_applied"),
        intent("ship", A),
        attempt("ship", A, NO),
    ]
    failed = replay(ORDER, events)
    assert failed == SagaState(
        status=SagaStatus.COMPENSATING,
        phase=Phase.COMPENSATING,
        cursor=2,
        settling=False,
        applied=(0, 1),
        to_compensate=(1, 0),
        history=tuple(events),
    )
    first = next_action(ORDER, failed)
    assert first is not None
    assert (first.step.name, first.operation) == ("charge", "refund")

    events += [intent("charge", C), attempt("charge", C, OK)]
    one_left = replay(ORDER, events)
    assert (one_left.status, one_left.to_compensate) == (SagaStatus.COMPENSATING, (0,))
    second = next_action(ORDER, one_left)
    assert second is not None
    assert (second.step.name, second.operation) == ("reserve", "unreserve")

    events += [intent("reserve", C), attempt("reserve", C, OK)]
    done = replay(ORDER, events)
    assert (done.status, done.to_compensate) == (SagaStatus.COMPENSATED, ())
    assert next_action(ORDER, done) is None


def test_a_fenced_first_step_rejects_the_saga_with_nothing_to_undo() -> None:
    events = [
        started(),
        intent("charge", A),
        attempt("charge", A, UNK),
        exhausted("charge", A),
        intent("charge", S),
        attempt("charge", S, OK, result="voided"),
    ]
    state = replay(PAY, events)
    assert state == SagaState(
        status=SagaStatus.REJECTED,
        phase=Phase.FORWARD,
        cursor=0,
        settling=False,
        applied=(),
        history=tuple(events),
    )


def test_a_fenced_later_step_compensates_the_applied_ones_and_stops_settling() -> None:
    events = [*reserved_then_charge_unknown(), attempt("charge", S, OK, result="voided")]
    state = replay(ORDER, events)
    assert state == SagaState(
        status=SagaStatus.COMPENSATING,
        phase=Phase.COMPENSATING,
        cursor=1,
        settling=False,
        applied=(0,),
        to_compensate=(0,),
        history=tuple(events),
    )


@pytest.mark.parametrize(
    ("last", "reason"),
    [
        (attempt("charge", S, NO, error="card gone"), "settlement void_charge refused: card gone"),
        (attempt("charge", S, OK, result="maybe"), "settlement void_charge answered 'maybe'"),
    ],
)
def test_a_settlement_that_cannot_decide_parks_the_saga_with_its_reason(
    last: SagaEvent, reason: str
) -> None:
    state = replay(ORDER, [*reserved_then_charge_unknown(), last])
    assert (state.status, state.parked_reason) == (SagaStatus.FAILED_NEEDS_ATTENTION, reason)
    assert next_action(ORDER, state) is None


def test_a_refused_compensation_parks_with_its_reason_and_a_retry_clears_it() -> None:
    events = [
        *reserved_then_charge_unknown(),
        attempt("charge", S, OK, result="voided"),
        intent("reserve", C),
        attempt("reserve", C, NO, error="already shipped"),
    ]
    parked = replay(ORDER, events)
    assert (parked.status, parked.parked_reason) == (
        SagaStatus.FAILED_NEEDS_ATTENTION,
        "compensation unreserve refused: already shipped",
    )
    resumed = apply(ORDER, parked, SagaEvent(EventKind.OPERATOR_RETRY, at=AT))
    assert (resumed.status, resumed.parked_reason) == (SagaStatus.COMPENSATING, None)
    call = next_action(ORDER, resumed)
    assert call is not None
    assert call.operation == "unreserve"


def test_a_retried_forward_step_shows_its_running_status_and_no_reason() -> None:
    events = [
        *reserved_then_charge_unknown(),
        exhausted("charge", S),  # the settlement's outcome stayed unknown too: parked
    ]
    parked = replay(ORDER, events)
    assert parked.parked_reason == "void_charge on charge: outcome unknown after retries"
    resumed = apply(ORDER, parked, SagaEvent(EventKind.OPERATOR_RETRY, at=AT))
    assert (resumed.status, resumed.parked_reason, resumed.settling) == ("charging", None, True)


def refusal(state: SagaState, event: SagaEvent) -> str:
    with pytest.raises(InvalidTransition) as refused:
        apply(ORDER, state, event)
    return str(refused.value)


def test_each_refused_event_says_why() -> None:
    reserving = replay(ORDER, [started(), intent("reserve", A)])
    assert refusal(reserving, started()) == "a saga starts once"
    assert (
        refusal(reserving, SagaEvent(EventKind.OPERATOR_RETRY, at=AT))
        == "only a parked saga can be retried, not reserving"
    )
    assert (
        refusal(reserving, SagaEvent(EventKind.OPERATOR_RESOLVE, at=AT))
        == "only a parked saga can be resolved, not reserving"
    )
    assert refusal(reserving, intent("charge", A)) == "expected reserve/action, got charge/action"
    rejected = replay(ORDER, [started(), intent("reserve", A), attempt("reserve", A, NO)])
    assert refusal(rejected, attempt("reserve", A, OK)) == "attempt on a rejected saga"


CONFIRM = Step("confirm", "orders", "confirm", "confirming", {}, StepKind.RETRIABLE)
#: reserve, charge (compensatable), ship (the pivot), confirm (retriable).
FULFIL = SagaDefinition("fulfil", (RESERVE, CHARGE, SHIP, CONFIRM))


def shipped() -> list[SagaEvent]:
    return [
        started(),
        intent("reserve", A),
        attempt("reserve", A, OK),
        intent("charge", A),
        attempt("charge", A, OK),
        intent("ship", A),
        attempt("ship", A, OK),
        intent("confirm", A),
    ]


@pytest.mark.parametrize(
    ("last", "reason"),
    [
        (
            attempt("confirm", A, NO, error="order_locked"),
            "confirm on confirm refused: order_locked",
        ),
        (exhausted("confirm", A), "confirm on confirm: outcome unknown after retries"),
    ],
    ids=["refused", "unknown"],
)
def test_a_retriable_step_that_fails_parks_the_saga_and_undoes_nothing(
    last: SagaEvent, reason: str
) -> None:
    """Past the pivot nothing may be undone: the shipment left. A refusal of a retriable step
    (or its retries running out) goes to an operator, never to compensation."""
    events = [*shipped(), last]
    state = replay(FULFIL, events)
    assert state == SagaState(
        status=SagaStatus.FAILED_NEEDS_ATTENTION,
        phase=Phase.FORWARD,
        cursor=3,
        settling=False,
        applied=(0, 1),
        to_compensate=(),
        parked_reason=reason,
        history=tuple(events),
    )
    assert next_action(FULFIL, state) is None


def test_a_retriable_step_that_succeeds_completes_the_saga() -> None:
    state = replay(FULFIL, [*shipped(), attempt("confirm", A, OK)])
    assert (state.status, state.cursor, state.applied) == (SagaStatus.COMPLETED, 4, (0, 1))


def test_the_pivot_refused_still_compensates_what_came_before_it() -> None:
    events = [*shipped()[:6], attempt("ship", A, NO)]
    state = replay(FULFIL, events)
    assert (state.phase, state.to_compensate) == (Phase.COMPENSATING, (1, 0))


HOLD = Step("hold", "stock", "hold", "holding", {}, StepKind.COMPENSATABLE, compensation="free")
PAY_FOR_HOLD = Step(
    "pay",
    "pay",
    "pay",
    "paying",
    {"hold": FromResult("hold", "hold_id")},
    StepKind.PIVOT,
)
HELD = SagaDefinition("held", (HOLD, PAY_FOR_HOLD))


def held(data: dict[str, object] | None) -> SagaEvent:
    return SagaEvent(
        EventKind.ATTEMPT, at=AT, step="hold", role=A, outcome=OK, result="held", data=data
    )


def test_an_answer_later_steps_read_is_kept_and_read_back_from_the_log() -> None:
    events = [started(), intent("hold", A), held({"status": "held", "hold_id": "h-1"})]
    state = replay(HELD, events)
    assert (state.status, state.cursor) == ("holding", 1)  # "paying" once its intent is logged
    assert step_results(state.history) == {"hold": {"status": "held", "hold_id": "h-1"}}
    call = next_action(HELD, state)
    assert call is not None
    assert call.step.body({}, step_results(state.history)) == {"hold": "h-1"}


@pytest.mark.parametrize("data", [None, {"status": "held"}], ids=["no answer", "no field"])
def test_a_success_without_a_field_a_later_step_needs_parks_the_saga(
    data: dict[str, object] | None,
) -> None:
    """The hold landed (money or stock moved), so it is not a refusal to compensate blindly,
    and the payment cannot be built: an operator decides."""
    state = replay(HELD, [started(), intent("hold", A), held(data)])
    assert (state.status, state.parked_reason, state.applied) == (
        SagaStatus.FAILED_NEEDS_ATTENTION,
        "hold on hold: answer lacks ['hold_id']",
        (),
    )


def test_only_the_logged_answers_of_successful_actions_are_results() -> None:
    answer = {"hold_id": "h-1"}
    history = [
        started(),
        intent("hold", A),
        held(answer),
        SagaEvent(EventKind.ATTEMPT, at=AT, step="pay", role=A, outcome=NO, data={"x": 1}),
        SagaEvent(EventKind.ATTEMPT, at=AT, step="free", role=C, outcome=OK, data={"x": 2}),
        SagaEvent(EventKind.ATTEMPT, at=AT, step=None, role=A, outcome=OK, data={"x": 3}),
        SagaEvent(EventKind.OPERATION_STARTED, at=AT, step="note", role=A, data={"x": 4}),
        SagaEvent(EventKind.ATTEMPT, at=AT, step="ship", role=A, outcome=OK),
    ]
    assert step_results(history) == {"hold": answer}
