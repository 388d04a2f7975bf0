"""A saga definition's calls and step lookup, on definitions built here rather than `TRANSFER`.

`TRANSFER` is built when its module is imported, before any test runs, so tests that only use it
never exercise how a definition is built (`SagaDefinition.__post_init__`, `Call.of`,
`Step.operation`). Its shape rules (step kinds and their order) are tested in
`test_saga_definition_checks.py`; here, what a built definition refuses is a call of a role
its step does not have (`InvalidTransition: step <name> has no <role>`), a step index past its
steps (`InvalidTransition: <definition> has no step <index>`) and a step name it does not have
(`InvalidTransition: <definition> has no step '<name>'`). Each is asserted here with its exact
message, since that message is what the shell logs when a log or a definition is off.
"""

from __future__ import annotations

import json

import pytest

from repository_after.domain.saga import (
    Call,
    EventKind,
    InvalidTransition,
    Outcome,
    SagaDefinition,
    SagaEvent,
    Step,
    StepKind,
    StepRole,
)

A, S, C = StepRole.ACTION, StepRole.SETTLEMENT, StepRole.COMPENSATION


def step(
    name: str, kind: StepKind, *, compensation: str | None = None, settlement: str | None = None
) -> Step:
    return Step(
        name=name,
        service="svc",
        action=f"do_{name}",
        running_status=f"{name}ing",
        request={"id": "id"},
        kind=kind,
        compensation=compensation,
        settlement=settlement,
    )


# Every combination of the optional roles, so each role is present on some step and missing on
# another, and a step's calls never borrow another step's operation.
RESERVE = step("reserve", StepKind.COMPENSATABLE, compensation="unreserve")
BILL = step("bill", StepKind.COMPENSATABLE, compensation="refund", settlement="void_bill")
SHIP = step("ship", StepKind.PIVOT, settlement="cancel_shipment")
NOTIFY = step("notify", StepKind.RETRIABLE)


def order() -> SagaDefinition:
    """Built inside each test: the construction itself is under test."""
    return SagaDefinition(name="order", steps=(RESERVE, BILL, SHIP, NOTIFY))


@pytest.mark.parametrize(
    ("index", "role", "expected"),
    [
        (0, A, Call(0, RESERVE, A, "do_reserve")),
        (0, C, Call(0, RESERVE, C, "unreserve")),
        (1, A, Call(1, BILL, A, "do_bill")),
        (1, S, Call(1, BILL, S, "void_bill")),
        (1, C, Call(1, BILL, C, "refund")),
        (2, A, Call(2, SHIP, A, "do_ship")),
        (2, S, Call(2, SHIP, S, "cancel_shipment")),
        (3, A, Call(3, NOTIFY, A, "do_notify")),
    ],
)
def test_each_call_names_its_step_role_and_operation(
    index: int, role: StepRole, expected: Call
) -> None:
    """The call is what the shell performs: which operation, of which step (its service and
    body), in which role (action, settlement or compensation decide the next transition)."""
    definition = order()
    call = definition.call(index, role)
    assert call == expected
    assert (call.step_index, call.step, call.role, call.operation) == expected
    assert call.role is role
    # Built once with the definition, not per request (docs/performance.md, seventh round).
    assert definition.call(index, role) is call


@pytest.mark.parametrize(
    ("index", "role", "message"),
    [
        (0, S, "step reserve has no settlement"),
        (2, C, "step ship has no compensation"),
        (3, S, "step notify has no settlement"),
        (3, C, "step notify has no compensation"),
    ],
)
def test_a_role_the_step_does_not_have_is_refused(index: int, role: StepRole, message: str) -> None:
    definition = order()
    with pytest.raises(InvalidTransition) as refused:
        definition.call(index, role)
    assert str(refused.value) == message


@pytest.mark.parametrize("index", [-1, 4])
def test_a_step_index_outside_the_definition_is_refused(index: int) -> None:
    """Only the definition's own calls are handed out: an index past either end is no step
    (a negative one must not count from the end and build a call of the last step)."""
    definition = order()
    with pytest.raises(InvalidTransition) as refused:
        definition.call(index, A)
    assert str(refused.value) == f"order has no step {index}"


def test_a_definition_of_steps_with_single_roles_builds_and_refuses_the_rest() -> None:
    """A definition whose only step has just its action builds (the missing roles are skipped,
    not an error) and refuses the others."""
    single = SagaDefinition(name="ping", steps=(NOTIFY,))
    assert single.call(0, A) == Call(0, NOTIFY, A, "do_notify")
    with pytest.raises(InvalidTransition, match=r"^step notify has no compensation$"):
        single.call(0, C)


def test_index_finds_a_step_by_name_and_refuses_an_unknown_one() -> None:
    definition = order()
    assert [definition.index(name) for name in ("reserve", "bill", "ship", "notify")] == [
        0,
        1,
        2,
        3,
    ]
    with pytest.raises(InvalidTransition) as refused:
        definition.index("pack")
    assert str(refused.value) == "order has no step 'pack'"


def test_step_operation_by_role() -> None:
    assert (BILL.operation(A), BILL.operation(S), BILL.operation(C)) == (
        "do_bill",
        "void_bill",
        "refund",
    )
    with pytest.raises(InvalidTransition, match=r"^step ship has no compensation$"):
        SHIP.operation(C)


def test_events_read_back_from_their_dict_form_carry_enum_members() -> None:
    """A log stores events as dicts; readers compare the decoded fields with `is`
    (`e.role is StepRole.ACTION` in settlements and metrics), and a plain str equal to the
    value would compare equal with `==` yet fail every such check."""
    event = SagaEvent(
        EventKind.ATTEMPT,
        at="2026-01-01T00:00:00+00:00",
        step="bill",
        role=StepRole.SETTLEMENT,
        outcome=Outcome.SUCCEEDED,
    )
    stored = json.loads(json.dumps(event.as_dict()))  # as a log stores it: plain strings
    assert stored["role"] == "settlement"
    back = SagaEvent.from_dict(stored)
    assert back == event
    assert back.kind is EventKind.ATTEMPT
    assert back.role is StepRole.SETTLEMENT
    assert back.outcome is Outcome.SUCCEEDED
