"""Every transition of the transfer saga's pure state machine."""

from __future__ import annotations

import pytest

from repository_after.domain.saga import (
    EventKind,
    InvalidTransition,
    Outcome,
    Phase,
    SagaEvent,
    SagaState,
    SagaStatus,
    StepRole,
    apply,
    next_action,
    replay,
)
from repository_after.domain.transfer import TRANSFER

AT = "2026-01-01T00:00:00+00:00"


def started() -> SagaEvent:
    return SagaEvent(EventKind.STARTED, at=AT)


def intent(step: str, role: StepRole) -> SagaEvent:
    return SagaEvent(EventKind.OPERATION_STARTED, at=AT, step=step, role=role)


def attempt(step: str, role: StepRole, outcome: Outcome, result: str | None = None) -> SagaEvent:
    return SagaEvent(EventKind.ATTEMPT, at=AT, step=step, role=role, outcome=outcome, result=result)


def exhausted(step: str, role: StepRole) -> SagaEvent:
    return SagaEvent(EventKind.RETRIES_EXHAUSTED, at=AT, step=step, role=role)


def run(*events: SagaEvent) -> SagaState:
    return replay(TRANSFER, [started(), *events])


A, S, C = StepRole.ACTION, StepRole.SETTLEMENT, StepRole.COMPENSATION
OK, NO, UNK = Outcome.SUCCEEDED, Outcome.REJECTED, Outcome.UNKNOWN


def test_a_new_saga_is_started_and_debits_first() -> None:
    state = run()
    assert state.status == SagaStatus.STARTED
    call = next_action(TRANSFER, state)
    assert call is not None
    assert (call.step.name, call.role, call.operation) == ("debit", A, "debit")


def test_intent_to_debit_makes_the_saga_debiting() -> None:
    assert run(intent("debit", A)).status == "debiting"


def test_successful_debit_moves_on_to_crediting() -> None:
    state = run(intent("debit", A), attempt("debit", A, OK), intent("credit", A))
    assert state.status == "crediting"
    assert state.applied == (0,)


def test_successful_credit_completes_the_saga() -> None:
    state = run(
        intent("debit", A), attempt("debit", A, OK), intent("credit", A), attempt("credit", A, OK)
    )
    assert state.status == SagaStatus.COMPLETED
    assert next_action(TRANSFER, state) is None


def test_refused_debit_rejects_the_saga_with_nothing_to_undo() -> None:
    state = run(intent("debit", A), attempt("debit", A, NO))
    assert state.status == SagaStatus.REJECTED
    assert next_action(TRANSFER, state) is None


def test_unknown_attempt_changes_nothing_but_history() -> None:
    before = run(intent("debit", A))
    after = apply(TRANSFER, before, attempt("debit", A, UNK))
    assert after.status == before.status
    assert after.cursor == before.cursor
    assert len(after.history) == len(before.history) + 1


def test_debit_unknown_after_retries_is_compensated_because_it_may_have_landed() -> None:
    state = run(intent("debit", A), attempt("debit", A, UNK), exhausted("debit", A))
    assert state.status == SagaStatus.COMPENSATING
    call = next_action(TRANSFER, state)
    assert call is not None
    assert (call.step.name, call.operation) == ("debit", "compensate_debit")


def test_refused_credit_compensates_the_debit() -> None:
    state = run(
        intent("debit", A), attempt("debit", A, OK), intent("credit", A), attempt("credit", A, NO)
    )
    assert state.status == SagaStatus.COMPENSATING
    assert state.phase is Phase.COMPENSATING
    assert state.to_compensate == (0,)


def test_credit_unknown_after_retries_is_settled_with_a_void() -> None:
    state = run(
        intent("debit", A),
        attempt("debit", A, OK),
        intent("credit", A),
        attempt("credit", A, UNK),
        exhausted("credit", A),
    )
    call = next_action(TRANSFER, state)
    assert call is not None
    assert (call.role, call.operation) == (S, "void_credit")
    assert state.status == "crediting"


def settled_with(result: str) -> SagaState:
    return run(
        intent("debit", A),
        attempt("debit", A, OK),
        intent("credit", A),
        attempt("credit", A, UNK),
        exhausted("credit", A),
        intent("credit", S),
        attempt("credit", S, OK, result=result),
    )


def test_void_answering_already_applied_completes_the_saga() -> None:
    assert settled_with("already_applied").status == SagaStatus.COMPLETED


def test_void_answering_voided_compensates_the_debit() -> None:
    state = settled_with("voided")
    assert state.status == SagaStatus.COMPENSATING
    call = next_action(TRANSFER, state)
    assert call is not None
    assert call.operation == "compensate_debit"


@pytest.mark.parametrize("result", [None, "applied", "something_new"])
def test_a_settlement_answer_that_is_neither_landed_nor_voided_parks_the_saga(
    result: str | None,
) -> None:
    state = settled_with(result)  # type: ignore[arg-type]
    assert state.status == SagaStatus.FAILED_NEEDS_ATTENTION
    assert next_action(TRANSFER, state) is None


def compensating() -> list[SagaEvent]:
    return [
        intent("debit", A),
        attempt("debit", A, OK),
        intent("credit", A),
        attempt("credit", A, NO),
        intent("debit", C),
    ]


def test_successful_compensation_ends_compensated() -> None:
    state = run(*compensating(), attempt("debit", C, OK))
    assert state.status == SagaStatus.COMPENSATED
    assert next_action(TRANSFER, state) is None


def test_compensation_that_keeps_failing_parks_the_saga() -> None:
    state = run(*compensating(), attempt("debit", C, UNK), exhausted("debit", C))
    assert state.status == SagaStatus.FAILED_NEEDS_ATTENTION
    assert state.parked_reason is not None
    assert next_action(TRANSFER, state) is None


def test_refused_compensation_parks_the_saga() -> None:
    state = run(*compensating(), attempt("debit", C, NO))
    assert state.status == SagaStatus.FAILED_NEEDS_ATTENTION


def test_void_that_cannot_be_settled_parks_the_saga() -> None:
    state = run(
        intent("debit", A),
        attempt("debit", A, OK),
        intent("credit", A),
        attempt("credit", A, UNK),
        exhausted("credit", A),
        intent("credit", S),
        exhausted("credit", S),
    )
    assert state.status == SagaStatus.FAILED_NEEDS_ATTENTION


def test_operator_retry_resumes_a_parked_compensation() -> None:
    parked = run(*compensating(), exhausted("debit", C))
    resumed = apply(TRANSFER, parked, SagaEvent(EventKind.OPERATOR_RETRY, at=AT))
    assert resumed.status == SagaStatus.COMPENSATING
    call = next_action(TRANSFER, resumed)
    assert call is not None
    assert call.operation == "compensate_debit"
    done = replay(TRANSFER, [*resumed.history, intent("debit", C), attempt("debit", C, OK)])
    assert done.status == SagaStatus.COMPENSATED


def test_operator_resolve_closes_a_parked_saga() -> None:
    parked = run(*compensating(), exhausted("debit", C))
    resolved = apply(TRANSFER, parked, SagaEvent(EventKind.OPERATOR_RESOLVE, at=AT, note="x"))
    assert resolved.status == SagaStatus.RESOLVED
    assert next_action(TRANSFER, resolved) is None


def test_a_parked_event_parks_the_saga_as_it_stands_and_a_retry_resumes_it_there() -> None:
    """A worker without the saga's definition parks it mid-credit; a server with it resumes the
    credit, the same call under the same key, as after a crash."""
    mid_credit = run(intent("debit", A), attempt("debit", A, OK), intent("credit", A))
    why = "saga type 'transfer' version 2 is not registered on this server"
    parked = apply(TRANSFER, mid_credit, SagaEvent(EventKind.PARKED, at=AT, note=why))
    assert (parked.status, parked.parked_reason) == (SagaStatus.FAILED_NEEDS_ATTENTION, why)
    assert next_action(TRANSFER, parked) is None
    resumed = apply(TRANSFER, parked, SagaEvent(EventKind.OPERATOR_RETRY, at=AT))
    assert (resumed.status, resumed.parked_reason) == ("crediting", None)
    call = next_action(TRANSFER, resumed)
    assert call is not None
    assert (call.step.name, call.role) == ("credit", A)
    assert resumed.applied == mid_credit.applied == (0,)
    compensating_then_parked = apply(
        TRANSFER, run(*compensating()), SagaEvent(EventKind.PARKED, at=AT, note=why)
    )
    again = apply(TRANSFER, compensating_then_parked, SagaEvent(EventKind.OPERATOR_RETRY, at=AT))
    assert again.status == SagaStatus.COMPENSATING


def test_only_a_saga_in_progress_can_be_parked() -> None:
    parked = SagaEvent(EventKind.PARKED, at=AT, note="x")
    for at_rest in (
        run(intent("debit", A), attempt("debit", A, NO)),  # rejected
        run(*compensating(), exhausted("debit", C)),  # already parked
    ):
        with pytest.raises(InvalidTransition, match="only a saga in progress can be parked"):
            apply(TRANSFER, at_rest, parked)


@pytest.mark.parametrize("kind", [EventKind.OPERATOR_RETRY, EventKind.OPERATOR_RESOLVE])
def test_operator_actions_are_refused_unless_parked(kind: EventKind) -> None:
    with pytest.raises(InvalidTransition):
        apply(TRANSFER, run(intent("debit", A)), SagaEvent(kind, at=AT))


def test_entering_compensation_is_irreversible() -> None:
    state = run(*compensating())
    with pytest.raises(InvalidTransition):
        apply(TRANSFER, state, intent("credit", A))
    with pytest.raises(InvalidTransition):
        apply(TRANSFER, state, attempt("credit", S, OK, result="already_applied"))


def test_events_for_the_wrong_step_are_invalid() -> None:
    with pytest.raises(InvalidTransition):
        apply(TRANSFER, run(), intent("credit", A))


def test_nothing_happens_after_a_terminal_state() -> None:
    with pytest.raises(InvalidTransition):
        apply(TRANSFER, run(intent("debit", A), attempt("debit", A, NO)), intent("debit", A))


def test_a_saga_starts_only_once() -> None:
    with pytest.raises(InvalidTransition):
        apply(TRANSFER, run(), started())


def test_events_survive_a_round_trip_through_their_dict_form() -> None:
    event = attempt("credit", S, OK, result="voided")
    assert SagaEvent.from_dict(event.as_dict()) == event


def test_apply_records_each_event_once_in_order_and_keeps_the_transition() -> None:
    """`apply` builds the new state directly (no `_replace`): the history must grow by exactly
    the applied event, and every field the transition set must survive."""
    events = [
        started(),
        intent("debit", A),
        attempt("debit", A, OK),
        intent("credit", A),
        attempt("credit", A, NO),
    ]
    state = SagaState()
    for n, event in enumerate(events, start=1):
        state = apply(TRANSFER, state, event)
        assert type(state) is SagaState
        assert state.history == tuple(events[:n])
    assert state.status == SagaStatus.COMPENSATING
    assert state.phase is Phase.COMPENSATING
    assert state.cursor == 1
    assert state.applied == (0,)
    assert state.to_compensate == (0,)
    assert state == replay(TRANSFER, events)


def test_definition_calls_are_built_once_and_a_missing_role_is_still_refused() -> None:
    debit = TRANSFER.call(0, StepRole.ACTION)
    assert debit is TRANSFER.call(0, StepRole.ACTION)
    assert (debit.step.name, debit.operation) == ("debit", "debit")
    assert TRANSFER.call(0, StepRole.COMPENSATION).operation == "compensate_debit"
    assert TRANSFER.call(1, StepRole.SETTLEMENT).operation == "void_credit"
    with pytest.raises(InvalidTransition, match="debit has no settlement"):
        TRANSFER.call(0, StepRole.SETTLEMENT)
    with pytest.raises(InvalidTransition, match="credit has no compensation"):
        TRANSFER.call(1, StepRole.COMPENSATION)


def test_an_event_of_an_unknown_kind_is_refused_and_named() -> None:
    """A corrupt log (an event kind this code does not know) stops the replay, saying which."""
    corrupt = SagaEvent("renamed_by_a_newer_version", at=AT, step="debit", role=A)  # type: ignore[arg-type]
    with pytest.raises(InvalidTransition, match=r"^unknown event renamed_by_a_newer_version$"):
        apply(TRANSFER, run(), corrupt)
