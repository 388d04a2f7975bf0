"""Where a `sagabank serve` process keeps the participants it hosts
(`Settings.participant_database`) and which store a URL opens (`hosting.open_store`), which
roles host which (`entrypoints.participants.hosted_participants`), and a hosted store that is
not open yet answering as unavailable (an unknown outcome, nothing recorded), and closing the
store it opened."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from repository_after.config import ProcessRole, Settings
from repository_after.entrypoints.participants import hosted_participants
from repository_after.service_layer.ports import StorageError
from repository_after.services.hosting import DeferredStore, open_store
from repository_after.services.orders import SCHEMA, orders_service
from repository_after.services.orders_http import orders_routes


def settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]


def test_by_default_each_participant_has_a_sqlite_file_beside_the_process_file() -> None:
    plain = settings(database_url="sqlite:///data/x/books.db")
    assert plain.participant_database("inventory") == Path("data/x/books-inventory.db")
    assert plain.participant_database("orders") == Path("data/x/books-orders.db")


def test_a_participants_own_url_wins_and_postgres_and_memory_are_kept() -> None:
    own = settings(
        database_url="sqlite:///data/books.db",
        inventory_database_url="sqlite:///elsewhere/stock.db",
        orders_database_url="postgresql://db/orders",
    )
    assert own.participant_database("inventory") == Path("elsewhere/stock.db")
    assert own.participant_database("orders") == "postgresql://db/orders"
    pg = settings(database_url="postgresql://db/bank")
    assert pg.participant_database("inventory") == "postgresql://db/bank"
    assert settings(database_url="memory://").participant_database("orders") == Path(":memory:")
    maria = settings(database_url="mysql://root@db/bank")
    assert maria.participant_database("orders") == "mysql://root@db/bank"


ALL_HOSTED = [
    ("inventory", "/inventory"),
    ("orders", "/orders"),
    ("pupils", "/pupils"),
    ("classes", "/classes"),
]


def test_a_participant_database_url_is_checked_like_the_process_one() -> None:
    with pytest.raises(ValueError, match="inventory_database_url"):
        settings(inventory_database_url="oracle://db/stock")


@pytest.mark.parametrize(
    ("role", "hosted"),
    [
        (ProcessRole.ALL, ALL_HOSTED),
        (ProcessRole.ACCOUNTS, ALL_HOSTED),
        (ProcessRole.ORCHESTRATOR, []),
        (ProcessRole.INVENTORY, [("inventory", "")]),
        (ProcessRole.ORDERS, [("orders", "")]),
        (ProcessRole.PUPILS, [("pupils", "")]),
        (ProcessRole.CLASSES, [("classes", "")]),
    ],
)
def test_which_roles_host_which_participants_and_where(
    role: ProcessRole, hosted: list[tuple[str, str]], tmp_path: Path
) -> None:
    config = settings(database_url=f"sqlite:///{tmp_path / 'p.db'}", role=role)
    assert [(h.name, h.prefix) for h in hosted_participants(config)] == hosted
    assert list(tmp_path.iterdir()) == []  # nothing opened until start-up


async def test_a_store_not_open_yet_answers_503_and_records_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = DeferredStore(lambda: open_store(tmp_path / "orders.db", schema=SCHEMA, name="o"))
    app = FastAPI()
    app.include_router(orders_routes(orders_service(store), None))
    body = {
        "order_id": "o-1",
        "customer": "a",
        "merchant": "b",
        "lines": [{"sku": "s", "qty": 1}],
        "total": 1,
    }
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        with caplog.at_level(logging.ERROR, logger="repository_after.participant_kit.core"):
            early = await client.post("/create", json=body, headers={"transaction-id": "k:create"})
        assert (early.status_code, early.json()["error"]) == (503, "storage_unavailable")
        # the log says why (the answer does not: no storage detail leaves the service)
        assert [r.getMessage() for r in caplog.records] == [
            "orders create: storage failure: the store is not open"
        ]
        health = await client.get("/health")
        assert (health.status_code, health.json()) == (
            503,
            {"status": "unavailable", "service": "orders"},
        )
        store.open()
        try:
            health = await client.get("/health")
            assert (health.status_code, health.json()) == (
                200,
                {"status": "ok", "service": "orders"},
            )
            late = await client.post("/create", json=body, headers={"transaction-id": "k:create"})
            assert late.status_code == 200
            assert "idempotent-replayed" not in late.headers  # the 503 recorded nothing
        finally:
            await store.close()
        closed = await client.post("/create", json=body, headers={"transaction-id": "k2:create"})
        assert closed.status_code == 503


class Store:
    """A store that only says whether it was closed."""

    closed = False

    async def close(self) -> None:
        self.closed = True


async def test_a_deferred_store_opens_once_and_closing_it_closes_that_store() -> None:
    """The host's lifespan closes what start-up opened (a file, a pool); closing a store never
    opened is nothing to do, and a closed one answers unavailable again."""
    opened: list[Store] = []

    def opener() -> Store:
        opened.append(Store())
        return opened[-1]

    deferred = DeferredStore(opener)  # type: ignore[arg-type]
    await deferred.close()
    assert opened == []
    deferred.open()
    deferred.open()
    assert len(opened) == 1
    await deferred.close()
    assert opened[0].closed
    with pytest.raises(StorageError):
        await deferred.read(lambda tx: None)


@pytest.mark.parametrize("scheme", ["postgres://", "postgresql://"])
async def test_either_postgres_scheme_opens_the_participant_s_postgres_store(
    postgres_url: str, scheme: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The settings take both schemes (as libpq does): either opens that database, never a
    SQLite file named after the URL."""
    monkeypatch.chdir(tmp_path)
    url = scheme + postgres_url.split("://", 1)[1]
    store = open_store(url, schema=SCHEMA, name="o")
    try:
        found = await store.read(lambda tx: tx.execute("SELECT current_database()"))
    finally:
        await store.close()
    assert found == [(postgres_url.rsplit("/", 1)[1],)]
    assert list(tmp_path.iterdir()) == []
