"""The registry of saga types: typed parameters checked against the steps and validated before
anything is logged, one definition per (name, version), the steps whose service has no URL, and
the retry horizon derived from the definitions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel, ValidationError, create_model

from repository_after.bootstrap import saga_types
from repository_after.config import Settings
from repository_after.domain.errors import SameAccount
from repository_after.domain.saga import (
    FromResult,
    InvalidDefinition,
    SagaDefinition,
    SagaState,
    Step,
    StepKind,
)
from repository_after.domain.sagas import DEFINITIONS
from repository_after.domain.transfer import TRANSFER
from repository_after.entrypoints.schemas import TransferIn
from repository_after.service_layer.saga_listing import summary_view
from repository_after.service_layer.saga_ports import SagaSummary, StoredSaga
from repository_after.service_layer.saga_types import VIEW_FIELDS, SagaTypes, UnknownSagaType
from repository_after.service_layer.saga_views import saga_view


class OrderIn(BaseModel):
    customer: str
    total: int
    lines: list[dict[str, int]]
    placed_at: datetime | None = None


def order(version: int = 1, *, pay_service: str = "payment") -> SagaDefinition:
    return SagaDefinition(
        "order",
        (
            Step(
                "reserve",
                "inventory",
                "reserve",
                "reserving",
                {"lines": "lines"},
                StepKind.COMPENSATABLE,
                compensation="release",
            ),
            Step(
                "pay",
                pay_service,
                "pay",
                "paying",
                {"customer": "customer", "amount": "total", "r": FromResult("reserve", "id")},
                StepKind.PIVOT,
                settlement="void_pay",
            ),
            Step("confirm", "orders", "confirm", "confirming", {}, StepKind.RETRIABLE),
        ),
        version=version,
    )


def registry() -> SagaTypes:
    types = SagaTypes()
    types.register(TRANSFER, TransferIn)
    types.register(order(), OrderIn)
    return types


def test_parameters_are_validated_by_the_types_model_and_returned_as_plain_data() -> None:
    types = registry()
    assert types.parameters("transfer", {"source": "a", "target": "b", "amount": 5}) == {
        "source": "a",
        "target": "b",
        "amount": 5,
    }
    for bad in (
        {"source": "a", "target": "b", "amount": "5"},  # strict: no coercion of money
        {"source": "a", "target": "b", "amount": 0},
        {"source": "a", "target": "b"},
        {"source": "a", "target": "b", "amount": 5, "note": "x"},
    ):
        with pytest.raises(ValidationError):
            types.parameters("transfer", bad)
    with pytest.raises(UnknownSagaType, match="no saga type 'refund'"):
        types.parameters("refund", {})
    # as the log stores them: JSON data, not Python objects
    assert types.parameters(
        "order",
        {"customer": "c", "total": 5, "lines": [], "placed_at": datetime(2026, 1, 2, tzinfo=UTC)},
    ) == {"customer": "c", "total": 5, "lines": [], "placed_at": "2026-01-02T00:00:00Z"}


def test_a_model_without_a_parameter_the_steps_read_is_refused() -> None:
    class Partial(BaseModel):
        customer: str

    types = SagaTypes()
    with pytest.raises(InvalidDefinition) as refused:
        types.register(order(), Partial)
    assert str(refused.value) == (
        "saga 'order': its steps read ['lines', 'total'], which its parameter model Partial "
        "does not have"
    )
    assert "order" not in types


def test_one_definition_per_version_and_new_sagas_start_on_the_latest() -> None:
    types = registry()
    with pytest.raises(InvalidDefinition, match=r"^saga 'order' version 1 is registered twice$"):
        types.register(order(pay_service="payments"), OrderIn)
    types.register(order(3, pay_service="payments"), OrderIn)
    types.register(order(2), OrderIn)  # registered later, but not the latest
    assert types.latest("order").version == 3
    assert types.definitions() == {"transfer": TRANSFER, "order": types.latest("order")}
    assert types.version("order", 1) == order()
    assert types.version("order", 2).version == 2
    with pytest.raises(UnknownSagaType, match="no saga type 'order' version 4"):
        types.version("order", 4)
    with pytest.raises(UnknownSagaType):
        types.latest("refund")


def test_every_step_whose_service_has_no_url_is_named() -> None:
    types = registry()
    assert types.unserved({"accounts", "inventory", "payment", "orders"}) == []
    assert types.unserved({"accounts", "inventory"}) == [
        "saga 'order' step 'pay' calls service 'payment', which has no URL",
        "saga 'order' step 'confirm' calls service 'orders', which has no URL",
    ]
    types.register(order(2, pay_service="payments"), OrderIn)  # an older version may still run
    assert "saga 'order' step 'pay' calls service 'payments', which has no URL" in types.unserved(
        {"accounts", "inventory", "payment", "orders"}
    )


def test_the_retry_horizon_covers_every_call_of_the_longest_saga() -> None:
    # transfer: debit and credit (forward), compensate_debit and void_credit (settle)
    assert TRANSFER.retry_horizon(forward_deadline=10, settle_deadline=100) == 220
    # order: three actions; release, void_pay
    assert order().retry_horizon(forward_deadline=10, settle_deadline=100) == 230
    types = registry()
    assert types.retry_horizon(forward_deadline=10, settle_deadline=100) == 230
    assert SagaTypes().retry_horizon(forward_deadline=10, settle_deadline=100) == 0
    settings = Settings(retry_deadline=10, settle_deadline=100)
    # the built-in types: the order's is the longest (six actions; cancel, release,
    # compensate_debit, void_credit), longer than the transfer's 220
    assert settings.retry_horizon() == 6 * 10 + 4 * 100


def test_the_server_runs_the_built_in_types_whose_horizon_settings_check() -> None:
    """`Settings` checks the retention period against the horizon of `DEFINITIONS`; the server
    runs `saga_types()`: the two must be the same definitions."""
    assert saga_types().definitions() == DEFINITIONS
    assert saga_types().parameters("transfer", {"source": "a", "target": "b", "amount": 1})


def test_a_types_own_rules_run_after_its_model_on_the_validated_parameters() -> None:
    seen: list[dict[str, object]] = []

    def no_empty_orders(params: Mapping[str, object]) -> None:
        seen.append(dict(params))
        if not params["lines"]:
            raise SameAccount("an order needs a line")  # any BusinessError: its own 4xx

    types = SagaTypes()
    types.register(order(), OrderIn, no_empty_orders)
    good = {"customer": "c", "total": 5, "lines": [{"pen": 1}]}
    assert types.parameters("order", good) == {**good, "placed_at": None}
    with pytest.raises(SameAccount, match="an order needs a line"):
        types.parameters("order", {**good, "lines": []})
    with pytest.raises(ValidationError):
        types.parameters("order", {**good, "total": "x"})  # the model first: the rule never sees it
    assert seen == [{**good, "placed_at": None}, {**good, "lines": [], "placed_at": None}]


def test_each_version_is_described_step_by_step_for_people() -> None:
    types = registry()
    types.register(order(2, pay_service="payments"), OrderIn)
    described = types.describe()
    assert [(d["name"], d["version"], d["latest"]) for d in described] == [
        ("order", 1, False),
        ("order", 2, True),
        ("transfer", 1, True),
    ]
    assert [d["shape_hash"] for d in described] == [
        order().shape_hash(),
        order(2, pay_service="payments").shape_hash(),
        TRANSFER.shape_hash(),
    ]
    assert described[2]["steps"] == [
        {
            "name": "debit",
            "service": "accounts",
            "kind": "compensatable",
            "action": "debit",
            "compensation": "compensate_debit",
            "settlement": None,
            "request": {"account_id": "source", "amount": "amount"},
        },
        {
            "name": "credit",
            "service": "accounts",
            "kind": "pivot",
            "action": "credit",
            "compensation": None,
            "settlement": "void_credit",
            "request": {"account_id": "target", "amount": "amount"},
        },
    ]
    assert described[1]["steps"][1]["service"] == "payments"


def test_a_types_statuses_are_the_engines_and_its_steps_of_every_version_in_order() -> None:
    """What a listing of the type may be filtered by: a saga of an older version still runs
    through its own steps' statuses (here `confirming`), so those count too (the latest
    version's first)."""
    types = registry()
    v1 = order()
    shipping = Step("ship", "shipping", "ship", "shipping", {}, StepKind.RETRIABLE)
    types.register(SagaDefinition("order", (*v1.steps[:2], shipping), version=2), OrderIn)
    engine_after = ["compensating", "completed", "compensated", "rejected"]
    at_rest = ["failed_needs_attention", "resolved"]
    assert types.statuses("order") == [
        "started",
        *["reserving", "paying", "shipping", "confirming"],
        *engine_after,
        *at_rest,
    ]
    assert types.statuses("transfer") == [
        "started",
        "debiting",
        "crediting",
        *engine_after,
        *at_rest,
    ]
    with pytest.raises(UnknownSagaType):
        types.statuses("refund")


@pytest.mark.parametrize("taken", sorted(VIEW_FIELDS))
def test_a_parameter_named_like_a_field_of_the_sagas_views_is_refused(taken: str) -> None:
    """The views spread the parameters beside their own fields: a parameter `status` would
    overwrite the status a route answers 200 or 202 by."""
    model = create_model(
        "Clashing", customer=(str, ...), total=(int, ...), lines=(list, ...), **{taken: (str, "")}
    )
    types = SagaTypes()
    with pytest.raises(InvalidDefinition, match=rf"has \['{taken}'\], names the saga's views use"):
        types.register(order(), model)
    assert "order" not in types


def test_the_view_fields_are_exactly_what_the_views_put_beside_the_parameters() -> None:
    stored = StoredSaga("s", "transfer", 1, TRANSFER.shape_hash(), {}, "started", "t0", "t1", ())
    assert set(saga_view(stored=stored, state=SagaState())) == VIEW_FIELDS
    summary = SagaSummary("s", "transfer", 1, TRANSFER.shape_hash(), {}, "started", "t0", "t1")
    assert set(summary_view(summary)) <= VIEW_FIELDS
