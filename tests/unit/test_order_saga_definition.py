"""The order saga's definition and its registration: the steps in order with their kinds,
operations and services, its keys (the money under the saga id, the rest per step), the
reservation id read by `sell`, its retry horizon (which the retention check covers), a pinned
shape hash, and its strict parameter model."""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import pytest
from pydantic import ValidationError

from repository_after.bootstrap import saga_types
from repository_after.config import Settings
from repository_after.domain.errors import SameAccount
from repository_after.domain.order import ORDER
from repository_after.domain.saga import (
    FromResult,
    InvalidTransition,
    KeyScheme,
    SagaDefinition,
    StepKind,
    StepRole,
)
from repository_after.domain.sagas import DEFINITIONS
from repository_after.domain.transfer import TRANSFER

ORDER_PARAMS: dict[str, Any] = {
    "order_id": "o-1",
    "customer": "acc-01",
    "merchant": "acc-02",
    "lines": [{"sku": "apple", "qty": 2}, {"sku": "pear", "qty": 1}],
    "total": 1250,
}


def test_the_order_saga_is_create_reserve_charge_pay_sell_confirm_with_their_kinds() -> None:
    shape = [
        (s.name, s.service, s.action, s.kind, s.compensation, s.settlement) for s in ORDER.steps
    ]
    assert shape == [
        ("create", "orders", "create", StepKind.COMPENSATABLE, "cancel", None),
        ("reserve", "inventory", "reserve", StepKind.COMPENSATABLE, "release", None),
        ("charge", "accounts", "debit", StepKind.COMPENSATABLE, "compensate_debit", None),
        ("pay", "accounts", "credit", StepKind.PIVOT, None, "void_credit"),
        ("sell", "inventory", "sell", StepKind.RETRIABLE, None, None),
        ("confirm", "orders", "confirm", StepKind.RETRIABLE, None, None),
    ]
    assert ORDER.services == {"orders", "inventory", "accounts"}


def test_the_money_is_keyed_by_the_saga_id_and_every_other_step_by_its_own_key() -> None:
    """The account service relates a saga's debit, credit, compensate_debit and void_credit by
    one transaction id (as a transfer's): the charge and the payment go under the saga id; the
    other steps each under `<saga>:<step>`, every role of a step sharing it."""
    assert ORDER.keys is KeyScheme.STEP
    a, c, s = StepRole.ACTION, StepRole.COMPENSATION, StepRole.SETTLEMENT
    assert keys_of(ORDER) == {
        ("create", a): "s-1:create",
        ("create", c): "s-1:create",
        ("reserve", a): "s-1:reserve",
        ("reserve", c): "s-1:reserve",
        ("charge", a): "s-1",  # debit
        ("charge", c): "s-1",  # compensate_debit
        ("pay", a): "s-1",  # credit
        ("pay", s): "s-1",  # void_credit
        ("sell", a): "s-1:sell",
        ("confirm", a): "s-1:confirm",
    }
    # the account service sees an order's money exactly as a transfer's
    assert keys_of(TRANSFER) == {
        ("debit", a): "s-1",
        ("debit", c): "s-1",
        ("credit", a): "s-1",
        ("credit", s): "s-1",
    }


def keys_of(definition: SagaDefinition) -> dict[tuple[str, StepRole], str]:
    """(step, role) -> the key of that call in saga `s-1`, for every call the definition has."""
    keys = {}
    for i, step in enumerate(definition.steps):
        for role in StepRole:
            with suppress(InvalidTransition):  # a role the step does not have
                keys[step.name, role] = definition.key("s-1", definition.call(i, role))
    return keys


def test_the_requests_carry_the_order_and_sell_reads_the_reservation_id() -> None:
    results = {"reserve": {"status": "reserved", "reservation_id": "s-1:reserve"}}
    bodies = {s.name: s.body(ORDER_PARAMS, results) for s in ORDER.steps}
    assert bodies["create"] == ORDER_PARAMS
    assert bodies["reserve"] == {"lines": ORDER_PARAMS["lines"]}
    assert bodies["charge"] == {"account_id": "acc-01", "amount": 1250}
    assert bodies["pay"] == {"account_id": "acc-02", "amount": 1250}
    assert bodies["sell"] == {"reservation_id": "s-1:reserve"}
    assert bodies["confirm"] == {"order_id": "o-1"}
    assert ORDER.steps[4].request["reservation_id"] == FromResult("reserve", "reservation_id")
    assert ORDER.result_fields(ORDER.steps[1]) == {"reservation_id"}


def test_its_horizon_is_the_longest_and_the_retention_check_covers_it() -> None:
    # six actions (forward), three compensations and one settlement (settle)
    horizon = ORDER.retry_horizon(forward_deadline=30, settle_deadline=120)
    assert horizon == 6 * 30 + 4 * 120
    assert horizon > TRANSFER.retry_horizon(forward_deadline=30, settle_deadline=120)
    assert Settings(retry_deadline=30, settle_deadline=120).retry_horizon() == horizon
    with pytest.raises(ValidationError, match="retry horizon"):
        Settings(retry_deadline=30, settle_deadline=120, retention_days=(horizon - 1) / 86_400)


def test_its_shape_is_pinned() -> None:
    """A change to the order's steps changes this hash: register it as version 2 instead
    (docs/sagas.md, Versions). (It changed once within version 1, before any release: the
    charge and the payment keyed by the saga id.)"""
    assert (ORDER.version, ORDER.shape_hash()) == (1, "e485e2d9e0deb244")


def test_the_server_registers_the_order_with_its_parameter_model() -> None:
    types = saga_types()
    assert types.definitions() == DEFINITIONS
    assert types.latest("order") is ORDER
    assert types.parameters("order", ORDER_PARAMS) == ORDER_PARAMS


@pytest.mark.parametrize(
    "changes",
    [
        {"order_id": ""},
        {"order_id": "o" * 65},
        {"order_id": "has space"},
        {"customer": "bad/id"},
        {"lines": []},
        {"lines": [{"sku": f"s{i}", "qty": 1} for i in range(51)]},
        {"lines": [{"sku": "apple", "qty": 1}, {"sku": "apple", "qty": 1}]},
        {"lines": [{"sku": "apple", "qty": 0}]},
        {"lines": [{"sku": "apple", "qty": "1"}]},
        {"lines": [{"sku": "apple"}]},
        {"total": 0},
        {"total": 10**12 + 1},
        {"total": 12.5},
        {"total": "1250"},
        {"total": True},
        {"note": "x"},
    ],
)
def test_a_bad_order_is_refused_by_the_parameter_model(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        saga_types().parameters("order", {**ORDER_PARAMS, **changes})


def test_the_order_limits_are_inclusive() -> None:
    fifty = [{"sku": f"s{i}", "qty": 1} for i in range(50)]
    for changes in ({"total": 1}, {"total": 10**12}, {"lines": fifty}, {"order_id": "o" * 64}):
        assert saga_types().parameters("order", {**ORDER_PARAMS, **changes})


def test_a_customer_paying_themself_is_refused_by_the_types_rule() -> None:
    with pytest.raises(SameAccount):
        saga_types().parameters("order", {**ORDER_PARAMS, "merchant": "acc-01"})
