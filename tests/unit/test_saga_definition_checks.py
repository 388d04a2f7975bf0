"""A definition's shape is checked when it is built: each refusal, with the message a developer
reads (`InvalidDefinition`, a `ValueError`), and what a valid definition then exposes (its keys,
parameters, services and shape hash)."""

from __future__ import annotations

import pytest

from repository_after.domain.saga import (
    FromResult,
    InvalidDefinition,
    KeyScheme,
    SagaDefinition,
    Step,
    StepKind,
    StepRole,
)
from repository_after.domain.transfer import TRANSFER

C, P, R = StepKind.COMPENSATABLE, StepKind.PIVOT, StepKind.RETRIABLE


def step(
    name: str,
    kind: StepKind,
    *,
    service: str = "svc",
    action: str | None = None,
    compensation: str | None = None,
    settlement: str | None = None,
    request: dict[str, str | FromResult] | None = None,
    landed: frozenset[str] = frozenset({"already_applied"}),
    fenced: frozenset[str] = frozenset({"voided"}),
    key: KeyScheme | None = None,
) -> Step:
    if kind is C and compensation is None:
        compensation = f"undo_{name}"
    return Step(
        name=name,
        service=service,
        action=action or f"do_{name}",
        running_status=f"{name}ing",
        request=request if request is not None else {"id": "order_id"},
        kind=kind,
        compensation=compensation,
        settlement=settlement,
        landed_statuses=landed,
        fenced_statuses=fenced,
        key=key,
    )


def refusal(steps: tuple[Step, ...], **kwargs: object) -> str:
    with pytest.raises(InvalidDefinition) as refused:
        SagaDefinition("order", steps, **kwargs)  # type: ignore[arg-type]
    return str(refused.value)


@pytest.mark.parametrize(
    "kinds",
    [(C,), (P,), (R,), (C, C), (C, P), (C, R), (P, R), (C, P, R, R), (C, C, P, R), (R, R)],
)
def test_every_shape_of_compensatable_then_one_pivot_then_retriable_is_accepted(
    kinds: tuple[StepKind, ...],
) -> None:
    steps = tuple(step(f"s{i}", kind) for i, kind in enumerate(kinds))
    assert [s.kind for s in SagaDefinition("order", steps).steps] == list(kinds)


@pytest.mark.parametrize(
    ("kinds", "message"),
    [
        ((P, C), "compensatable step 's1' after pivot step 's0'"),
        ((R, C), "compensatable step 's1' after retriable step 's0'"),
        ((R, P), "pivot step 's1' after retriable step 's0'"),
        ((C, R, C), "compensatable step 's2' after retriable step 's1'"),
    ],
)
def test_a_step_out_of_order_is_refused(kinds: tuple[StepKind, ...], message: str) -> None:
    steps = tuple(step(f"s{i}", kind) for i, kind in enumerate(kinds))
    assert refusal(steps) == (
        f"saga 'order': {message}: compensatable steps come first, then at most one pivot, "
        "then retriable steps"
    )


def test_two_pivots_are_refused() -> None:
    steps = (step("pay", P), step("ship", P))
    assert refusal(steps) == "saga 'order': more than one pivot: ['pay', 'ship']"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            Step("s", "svc", "do", "doing", {}, C),
            "compensatable step 's' has no compensation",
        ),
        (
            step("s", P, compensation="undo"),
            "pivot step 's' has a compensation: only steps before the point of no return can "
            "be undone",
        ),
        (
            step("s", R, compensation="undo"),
            "retriable step 's' has a compensation: only steps before the point of no return "
            "can be undone",
        ),
        (
            step("s", R, settlement="void"),
            "retriable step 's' has a settlement: it is retried instead",
        ),
        (
            step(
                "s",
                P,
                settlement="void",
                landed=frozenset({"x", "landed"}),
                fenced=frozenset({"x", "fenced"}),
            ),
            "step 's': ['x'] would mean both landed and fenced",
        ),
    ],
)
def test_a_step_whose_roles_do_not_fit_its_kind_is_refused(bad: Step, message: str) -> None:
    assert refusal((bad,)) == f"saga 'order': {message}"


def test_an_empty_saga_repeated_step_names_and_version_zero_are_refused() -> None:
    assert refusal(()) == "saga 'order': a saga needs at least one step"
    twice = (step("pay", C), step("pay", P))
    assert refusal(twice) == "saga 'order': step names repeat: ['pay', 'pay']"
    assert refusal((step("pay", P),), version=0) == (
        "saga 'order': version 0 (versions start at 1)"
    )


def test_a_request_may_read_only_an_earlier_steps_answer_that_no_settlement_decides() -> None:
    later = step("pay", P, request={"reservation": FromResult("ship", "id")})
    assert refusal((later, step("ship", R))) == (
        "saga 'order': step 'pay' reads the answer of 'ship', which is not an earlier step ([])"
    )
    itself = step("pay", P, request={"reservation": FromResult("pay", "id")})
    assert "reads the answer of 'pay', which is not an earlier step" in refusal((itself,))
    settled = step("reserve", C, settlement="void_reserve")
    reader = step("pay", P, request={"reservation": FromResult("reserve", "id")})
    assert refusal((settled, reader)) == (
        "saga 'order': step 'pay' reads the answer of 'reserve', whose outcome may be settled "
        "(a settlement's answer does not carry the action's)"
    )


def test_one_key_per_saga_forbids_calling_one_operation_of_a_service_twice() -> None:
    """Under one key per saga two calls of `reserve` would be one record at the participant:
    the second would replay the first's answer instead of reserving."""
    twice = (step("a", C, action="reserve"), step("b", C, action="reserve"))
    assert refusal(twice, keys=KeyScheme.SAGA) == (
        "saga 'order': step 'a' (action) and step 'b' (action) both send 'reserve' to service "
        "'svc' under the saga id: one key carries one call of an operation (key one of them "
        "per step, KeyScheme.STEP, or use another operation)"
    )
    per_step = SagaDefinition("order", twice)  # the default: one key per step
    assert [per_step.key("o-1", per_step.call(i, StepRole.ACTION)) for i in (0, 1)] == [
        "o-1:a",
        "o-1:b",
    ]
    # the same operation of two services is two records, one at each
    apart = (step("a", C, action="reserve"), step("b", C, action="reserve", service="other"))
    assert len(SagaDefinition("order", apart, keys=KeyScheme.SAGA).steps) == 2


def test_a_step_keyed_by_the_saga_id_overrides_its_definitions_per_step_keys() -> None:
    definition = SagaDefinition(
        "order",
        (
            step("reserve", C),
            step("charge", C, key=KeyScheme.SAGA),
            step("pay", P, settlement="void_pay", key=KeyScheme.SAGA),
            step("ship", R),
        ),
    )
    keys = {
        (name, role): definition.key("o-7", definition.call(definition.index(name), role))
        for name, role in [
            ("reserve", StepRole.ACTION),
            ("charge", StepRole.ACTION),
            ("charge", StepRole.COMPENSATION),
            ("pay", StepRole.ACTION),
            ("pay", StepRole.SETTLEMENT),
            ("ship", StepRole.ACTION),
        ]
    }
    assert keys == {
        ("reserve", StepRole.ACTION): "o-7:reserve",
        ("charge", StepRole.ACTION): "o-7",
        ("charge", StepRole.COMPENSATION): "o-7",
        ("pay", StepRole.ACTION): "o-7",
        ("pay", StepRole.SETTLEMENT): "o-7",
        ("ship", StepRole.ACTION): "o-7:ship",
    }
    # and the other way round: a step keyed per step in a saga keyed by its id
    mixed = SagaDefinition(
        "order", (step("a", C), step("b", P, key=KeyScheme.STEP)), keys=KeyScheme.SAGA
    )
    assert [mixed.key("o-7", mixed.call(i, StepRole.ACTION)) for i in (0, 1)] == ["o-7", "o-7:b"]


def test_two_steps_keyed_by_the_saga_id_may_not_send_one_operation_to_one_service() -> None:
    twice = (
        step("hold", C, service="accounts", action="debit", key=KeyScheme.SAGA),
        step("charge", C, service="accounts", action="debit", key=KeyScheme.SAGA),
    )
    assert refusal(twice) == (
        "saga 'order': step 'hold' (action) and step 'charge' (action) both send 'debit' to "
        "service 'accounts' under the saga id: one key carries one call of an operation (key "
        "one of them per step, KeyScheme.STEP, or use another operation)"
    )
    # a compensation counts too: it is sent under the same key as its action
    undo = (
        step("hold", C, service="accounts", action="debit", key=KeyScheme.SAGA),
        step("refund", C, service="accounts", compensation="debit", key=KeyScheme.SAGA),
    )
    assert "step 'hold' (action) and step 'refund' (compensation) both send 'debit'" in (
        refusal(undo)
    )
    # allowed: on two services, or with one of them keyed per step
    services = (twice[0], step("charge", C, service="cards", action="debit", key=KeyScheme.SAGA))
    assert len(SagaDefinition("order", services).steps) == 2
    one_per_step = (twice[0], step("charge", C, service="accounts", action="debit"))
    assert len(SagaDefinition("order", one_per_step).steps) == 2


def test_one_step_may_not_send_one_operation_in_two_roles_under_its_key() -> None:
    """A step's roles share its key: a settlement that is its action's operation would be
    answered with the action's own record."""
    same = step("pay", P, action="pay", settlement="pay")
    assert refusal((same,)) == (
        "saga 'order': step 'pay' (action) and step 'pay' (settlement) both send 'pay' to "
        "service 'svc' under the key '<saga id>:pay': one key carries one call of an operation "
        "(key one of them per step, KeyScheme.STEP, or use another operation)"
    )


def test_the_longest_saga_id_leaves_room_for_the_longest_step_suffix() -> None:
    per_step = SagaDefinition("order", (step("a", C), step("longest", P), step("mid", R)))
    assert per_step.max_saga_id_length(128) == 128 - len(":longest")
    money_only = SagaDefinition(
        "order", (step("a", C), step("longest", P, key=KeyScheme.SAGA)), keys=KeyScheme.STEP
    )
    assert money_only.max_saga_id_length(128) == 128 - len(":a")
    assert TRANSFER.max_saga_id_length(128) == 128  # every key is the bare saga id


def test_a_definition_whose_every_key_is_the_saga_id_takes_the_longest_saga_id() -> None:
    """No step adds a suffix: the saga id may be as long as a key (built here, not at import,
    so that mutation testing sees the definition built)."""
    bare = SagaDefinition("order", (step("a", C), step("b", P)), keys=KeyScheme.SAGA)
    assert bare.max_saga_id_length(128) == 128
    assert bare.max_saga_id_length(64) == 64


def test_every_role_of_a_step_shares_its_key_and_the_transfer_keeps_the_saga_id() -> None:
    definition = SagaDefinition(
        "order", (step("reserve", C), step("pay", P, settlement="void_pay"))
    )
    keys = {
        (i, role): definition.key("o-7", definition.call(i, role))
        for i, role in [
            (0, StepRole.ACTION),
            (0, StepRole.COMPENSATION),
            (1, StepRole.ACTION),
            (1, StepRole.SETTLEMENT),
        ]
    }
    assert keys == {
        (0, StepRole.ACTION): "o-7:reserve",
        (0, StepRole.COMPENSATION): "o-7:reserve",
        (1, StepRole.ACTION): "o-7:pay",
        (1, StepRole.SETTLEMENT): "o-7:pay",
    }
    assert TRANSFER.keys is KeyScheme.SAGA
    assert {TRANSFER.key("t-1", TRANSFER.call(i, StepRole.ACTION)) for i in (0, 1)} == {"t-1"}


def test_a_definition_names_its_parameters_services_and_the_answers_it_keeps() -> None:
    reserve = step("reserve", C, service="inventory", request={"lines": "lines"})
    pay = step(
        "pay",
        P,
        service="accounts",
        request={
            "account_id": "customer",
            "amount": "total",
            "reservation": FromResult("reserve", "reservation_id"),
            "expires": FromResult("reserve", "expires_at"),
        },
    )
    definition = SagaDefinition("order", (reserve, pay))
    assert definition.parameters == {"lines", "customer", "total"}
    assert definition.services == {"inventory", "accounts"}
    assert definition.result_fields(reserve) == {"reservation_id", "expires_at"}
    assert definition.result_fields(pay) == frozenset()
    assert pay.body(
        {"customer": "c-1", "total": 250, "lines": []},
        {"reserve": {"reservation_id": "r-9", "expires_at": "T", "extra": 1}},
    ) == {"account_id": "c-1", "amount": 250, "reservation": "r-9", "expires": "T"}
    assert TRANSFER.parameters == {"source", "target", "amount"}
    assert TRANSFER.services == {"accounts"}


def test_the_shape_hash_changes_with_anything_a_running_saga_depends_on() -> None:
    def order(**changes: object) -> SagaDefinition:
        fields: dict[str, object] = {
            "kind": P,
            "settlement": "void_pay",
            "request": {"account_id": "customer"},
            "service": "accounts",
            "action": None,
        }
        fields.update(changes)
        return SagaDefinition("order", (step("reserve", C), step("pay", **fields)))  # type: ignore[arg-type]

    base = order().shape_hash()
    assert order().shape_hash() == base  # stable: a digest of plain data, not of object ids
    assert SagaDefinition("order", order().steps, version=2).shape_hash() == base  # not the number
    variants = [
        order(kind=R, settlement=None),
        order(settlement="cancel_pay"),
        order(request={"account_id": "merchant"}),
        order(request={"account_id": FromResult("reserve", "id")}),
        order(service="payments"),
        order(action="charge"),
        order(landed=frozenset({"done"})),
        order(fenced=frozenset({"cancelled"})),
        order(key=KeyScheme.SAGA),
    ]
    hashes = [variant.shape_hash() for variant in variants]
    assert base not in hashes
    assert len(set(hashes)) == len(hashes)
    assert SagaDefinition("order", order().steps, keys=KeyScheme.SAGA).shape_hash() != base
    # a step's own scheme is part of its shape, and only when it has one
    assert order(key=KeyScheme.SAGA).steps[1].shape()["key"] == "saga"
    assert "key" not in order().steps[1].shape()


def test_the_transfers_shape_hash_is_pinned() -> None:
    """Sagas in flight resume only under a definition of the same shape: a change to the
    transfer's steps, or to how a shape is written down, must be a new version, never a silent
    change of this digest (which would strand every transfer in flight at the upgrade)."""
    assert TRANSFER.shape_hash() == "c5a5f5add9f94254"
    # built now, not at import: the digest is computed when a definition is built
    rebuilt = SagaDefinition(TRANSFER.name, TRANSFER.steps, keys=TRANSFER.keys)
    assert rebuilt.shape_hash() == "c5a5f5add9f94254"
    assert TRANSFER.steps[0].shape() == {
        "name": "debit",
        "service": "accounts",
        "kind": "compensatable",
        "action": "debit",
        "compensation": "compensate_debit",
        "settlement": None,
        "running_status": "debiting",
        "request": {"account_id": "source", "amount": "amount"},
        "landed": ["already_applied"],
        "fenced": ["voided"],
    }
    reader = step("pay", P, request={"r": FromResult("s0", "id"), "a": "amount"})
    assert reader.shape()["request"] == {"a": "amount", "r": {"step": "s0", "field": "id"}}
