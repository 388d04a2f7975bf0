"""The start-up check of the services map against the registered saga definitions: every
service a step calls must have a URL, else the process refuses to start, naming the saga type,
the step and the service, before anything is opened or logged (bootstrap, the app factory)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from repository_after.bootstrap import bootstrap, check_services, services_needed
from repository_after.config import ConfigurationError, ProcessRole, Settings
from repository_after.domain.saga_definition import SagaDefinition, Step, StepKind
from repository_after.domain.sagas import DEFINITIONS
from repository_after.domain.transfer import TRANSFER
from repository_after.entrypoints.app import create_app


def step(name: str, service: str, kind: StepKind, **extra: str) -> Step:
    return Step(
        name=name,
        service=service,
        action=name,
        running_status=f"{name}ing",
        request={"order_id": "order_id"},
        kind=kind,
        **extra,  # type: ignore[arg-type]
    )


#: A saga over services no process hosts by default (the built-in order saga's `inventory` and
#: `orders` live with the account service unless configured: see the last tests).
DELIVERY = SagaDefinition(
    name="delivery",
    steps=(
        step("create", "shipping", StepKind.COMPENSATABLE, compensation="cancel"),
        step("reserve", "warehouse", StepKind.COMPENSATABLE, compensation="release"),
        step("charge", "accounts", StepKind.PIVOT, settlement="void_credit"),
        step("confirm", "shipping", StepKind.RETRIABLE),
    ),
)
TRANSFER_ONLY = {TRANSFER.name: TRANSFER}
REGISTERED = {**TRANSFER_ONLY, DELIVERY.name: DELIVERY}


def settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": f"sqlite:///{tmp_path / 'sagas.db'}",
        "role": ProcessRole.ORCHESTRATOR,
        "accounts_url": "http://accounts.test",
        "services": {"shipping": {"url": "http://shipping.test"}},
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


def test_a_step_whose_service_has_no_url_is_refused_naming_saga_step_and_service(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigurationError) as refused:
        check_services(settings(tmp_path), REGISTERED)
    assert str(refused.value) == (
        "saga 'delivery' step 'reserve' calls service 'warehouse', which has no URL: "
        "set it in SAGABANK_SERVICES"
    )


def test_every_service_named_passes_and_readiness_waits_for_exactly_those(
    tmp_path: Path,
) -> None:
    complete = settings(
        tmp_path,
        services={
            "shipping": {"url": "http://shipping.test/"},
            "warehouse": {"url": "http://warehouse.test"},
            "unused": {"url": "http://unused.test"},
        },
    )
    check_services(complete, REGISTERED)  # no refusal
    assert services_needed(complete, REGISTERED) == {
        "accounts": "http://accounts.test",
        "shipping": "http://shipping.test",
        "warehouse": "http://warehouse.test",
    }
    assert services_needed(complete, TRANSFER_ONLY) == {"accounts": "http://accounts.test"}
    check_services(complete, {})  # no saga registered: nothing to check


def test_in_role_all_the_transfer_needs_no_setting(tmp_path: Path) -> None:
    check_services(settings(tmp_path, role=ProcessRole.ALL, accounts_url=None), DEFINITIONS)


async def test_bootstrap_refuses_before_opening_or_logging_anything(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for role in (ProcessRole.ALL, ProcessRole.ORCHESTRATOR):
        with pytest.raises(ConfigurationError, match="step 'reserve'"):
            await bootstrap(settings(tmp_path, role=role, demo_accounts=3), definitions=REGISTERED)
    assert list(tmp_path.iterdir()) == []  # no database file: nothing was opened
    assert [r.getMessage() for r in caplog.records if r.name.startswith("repository_after")] == []


async def test_an_account_service_alone_runs_no_saga_and_checks_none(tmp_path: Path) -> None:
    only_books = settings(tmp_path, role=ProcessRole.ACCOUNTS, accounts_url=None, demo_accounts=0)
    container = await bootstrap(only_books, definitions=REGISTERED)
    try:
        assert container.orchestrator is None
    finally:
        await container.close()


def test_the_app_factory_refuses_before_building_anything(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="saga 'delivery' step 'reserve'"):
        create_app(settings(tmp_path), definitions=REGISTERED)
    assert list(tmp_path.iterdir()) == []


def test_in_role_all_the_built_in_sagas_need_no_setting_and_call_this_process(
    tmp_path: Path,
) -> None:
    plain = settings(tmp_path, role=ProcessRole.ALL, accounts_url=None, services={}, port=8123)
    check_services(plain, DEFINITIONS)  # no refusal: transfer, order and classes
    assert services_needed(plain, DEFINITIONS) == {
        "accounts": "http://127.0.0.1:8123",
        "inventory": "http://127.0.0.1:8123/inventory",
        "orders": "http://127.0.0.1:8123/orders",
        "pupils": "http://127.0.0.1:8123/pupils",
        "classes": "http://127.0.0.1:8123/classes",
    }


def test_an_orchestrator_finds_inventory_and_orders_with_the_account_service_unless_named(
    tmp_path: Path,
) -> None:
    beside = settings(tmp_path, services={})
    assert services_needed(beside, DEFINITIONS) == {
        "accounts": "http://accounts.test",
        "inventory": "http://accounts.test/inventory",
        "orders": "http://accounts.test/orders",
        "pupils": "http://accounts.test/pupils",
        "classes": "http://accounts.test/classes",
    }
    apart = settings(
        tmp_path,
        services={
            "inventory": {"url": "http://inventory.test:8201"},
            "orders": {"url": "http://orders.test:8202", "batching": False},
        },
    )
    assert services_needed(apart, DEFINITIONS) == {
        "accounts": "http://accounts.test",
        "inventory": "http://inventory.test:8201",
        "orders": "http://orders.test:8202",
        "pupils": "http://accounts.test/pupils",
        "classes": "http://accounts.test/classes",
    }
    assert apart.resolved_services()["orders"].batching is False
    assert apart.resolved_services()["inventory"].batching is True
