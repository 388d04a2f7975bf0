"""The order saga's definition and its registration: the steps in order with their kinds,
operations and services, per-step keys, the reservation id read by `sell`, its retry horizon
(which the retention check covers), a pinned shape hash, and its strict parameter model."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from repository_after.bootstrap import saga_types
from repository_after.config import Settings
from repository_after.domain.errors import SameAccount
from repository_after.domain.order import ORDER
from repository_after.domain.saga import FromResult, KeyScheme, StepKind, StepRole
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


def test_every_role_of_a_step_shares_the_steps_own_key() -> None:
    assert ORDER.keys is KeyScheme.STEP
    keys = {
        (step.name, role): ORDER.key("s-1", ORDER.call(i, role))
        for i, step in enumerate(ORDER.steps)
        for role in StepRole
        if (step.kind is StepKind.COMPENSATABLE and role is StepRole.COMPENSATION)
        or (step.settlement is not None and role is StepRole.SETTLEMENT)
        or role is StepRole.ACTION
    }
    assert keys[("charge", StepRole.ACTION)] == keys[("charge", StepRole.COMPENSATION)]
    assert keys[("charge", StepRole.ACTION)] == "s-1:charge"
    assert keys[("pay", StepRole.ACTION)] == keys[("pay", StepRole.SETTLEMENT)] == "s-1:pay"
    assert len({keys[(s.name, StepRole.ACTION)] for s in ORDER.steps}) == len(ORDER.steps)


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
    (docs/sagas.md, Versions)."""
    assert (ORDER.version, ORDER.shape_hash()) == (1, "c36b3c487b6ade13")


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
