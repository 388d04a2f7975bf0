"""The choreography settings: the mode, the topology prefix, and what the mode refuses (a store
that is not SQLite) before anything starts."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from repository_after.choreography.wiring import (
    check_choreography,
    deployment_topology,
    reach_broker,
)
from repository_after.config import ConfigurationError, SagaMode, Settings


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_orchestration_is_the_default_mode() -> None:
    assert _settings().mode is SagaMode.ORCHESTRATION
    assert _settings(mode="choreography").mode is SagaMode.CHOREOGRAPHY


def test_the_prefix_names_every_queue_of_the_deployment() -> None:
    topology = deployment_topology(_settings(broker_prefix="prod-1", broker_delivery_limit=3))
    assert topology.exchange == "prod-1.events"
    assert topology.dead_letter_queue == "prod-1.dead"
    assert topology.delivery_limit == 3
    assert topology.queues["prod-1.tracker"] == ("call.#", "ended.#")
    assert topology.queues["prod-1.accounts"] == ("call.accounts.#", "timeout.accounts.#")
    assert {"prod-1.inventory", "prod-1.orders"} <= set(topology.queues)


@pytest.mark.parametrize("prefix", ["", "a b", "x/y", "#", "a" * 101])
def test_a_prefix_that_is_not_a_plain_name_is_refused(prefix: str) -> None:
    with pytest.raises(ValidationError):
        _settings(broker_prefix=prefix)


@pytest.mark.parametrize(
    "values",
    [
        {"database_url": "sqlite:///./data/x.db"},
        {"database_url": "postgresql://u@h/db"},
        {"database_url": "sqlite:///./data/x.db", "orders_database_url": "postgresql://u@h/o"},
    ],
)
def test_sqlite_and_postgresql_stores_are_accepted(values: dict[str, str]) -> None:
    check_choreography(_settings(**values))


@pytest.mark.parametrize(
    "values",
    [
        {"database_url": "mysql://u@h/db"},
        {"database_url": "mariadb://u@h/db"},
        {"database_url": "memory://"},
        {"orders_database_url": "mysql://u@h/db"},
        {"inventory_database_url": "mariadb://u@h/db"},
    ],
)
def test_a_store_on_mariadb_or_in_memory_is_refused(values: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="SQLite or PostgreSQL"):
        check_choreography(_settings(**values))


async def test_a_broker_that_does_not_answer_refuses_the_start_without_its_password() -> None:
    settings = _settings(broker_url="amqp://guest:hunter2@127.0.0.1:1/")
    with pytest.raises(ConfigurationError, match=r"127\.0\.0\.1:1") as refused:
        await reach_broker(settings)
    assert "hunter2" not in str(refused.value)
