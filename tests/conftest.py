"""Shared fixtures: backends for the contract suites, and an account-service app on SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from repository_after.adapters.memory_accounts import InMemoryAccountStore
from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.adapters.sqlite_accounts import SqliteAccountStore
from repository_after.adapters.sqlite_saga_log import SqliteSagaLog
from repository_after.config import Role, Settings
from repository_after.entrypoints.app import create_app
from repository_after.service_layer.ports import AccountStore
from repository_after.service_layer.saga_ports import SagaLog

BACKENDS = ["memory", "sqlite"]


@pytest.fixture(params=BACKENDS)
async def account_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AccountStore]:
    store: AccountStore = (
        InMemoryAccountStore()
        if request.param == "memory"
        else SqliteAccountStore(tmp_path / "accounts.db")
    )
    yield store
    await store.close()


@pytest.fixture(params=BACKENDS)
async def saga_log(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SagaLog]:
    log: SagaLog = (
        InMemorySagaLog() if request.param == "memory" else SqliteSagaLog(tmp_path / "sagas.db")
    )
    yield log
    await log.close()


def accounts_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": f"sqlite:///{tmp_path / 'accounts.db'}",
        "role": Role.ACCOUNTS,
        "credit_failure_rate": 0.0,
        "demo_accounts": 0,
        "admin_token": None,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


async def asgi_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sagabank") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The account service on a real SQLite file, reached through ASGITransport."""
    async for client in asgi_client(accounts_settings(tmp_path)):
        yield client
