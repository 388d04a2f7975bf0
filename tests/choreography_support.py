"""A choreographed deployment in one process, for the tests: real SQLite files (the account store
with the saga log beside it, the inventory's and the orders service's kit stores) or one
PostgreSQL database holding all of them (`database_url`, as a PostgreSQL deployment keeps them by
default), a broker (the in-memory fake, or RabbitMQ), the reactors, relays, tracker and the
`ChoreographedOrchestrator` that starts sagas, all as `sagabank serve --mode choreography`
composes them (`choreography.wiring`), from one `Settings`."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from repository_after.adapters.sqlite_accounts import SqliteAccountStore
from repository_after.bootstrap import (
    build_account_store,
    build_saga_log,
    retry_policies,
    saga_types,
)
from repository_after.choreography.launch import ChoreographedOrchestrator
from repository_after.choreography.runtime import Runtime
from repository_after.choreography.stores import Decide, schema
from repository_after.choreography.wiring import choreographed_orchestrator, runtime_for
from repository_after.config import SagaMode, Settings
from repository_after.messaging.ports import Broker
from repository_after.messaging.relay import RelayTiming
from repository_after.participant_kit import ParticipantService
from repository_after.participant_kit.records import Answer
from repository_after.participant_kit.storage import Tx
from repository_after.service_layer import accounts
from repository_after.service_layer.faults import FaultInjector
from repository_after.service_layer.ports import AccountStore
from repository_after.services import inventory, orders
from repository_after.services.hosting import open_store

FAST_RELAY = RelayTiming(poll_interval=0.01, initial_backoff=0.01, max_backoff=0.1)


@dataclass
class Deployment:
    accounts: AccountStore
    inventory: ParticipantService
    orders: ParticipantService
    orchestrator: ChoreographedOrchestrator
    runtime: Runtime
    broker: Broker
    #: operations whose calls fail (raise: an unknown outcome, redelivered) while listed here
    blocked: set[str]
    #: operation -> how many of its calls failed for being blocked
    failed: Counter[str]

    async def balances(self) -> dict[str, int]:
        listed = await self.accounts.read(lambda tx: tx.list_accounts())
        return {a.account_id: a.balance for a in listed}

    async def stock(self) -> dict[str, dict[str, int]]:
        rows = await self.inventory.store.read(lambda tx: inventory.list_stock(tx))
        return {row["sku"]: row for row in rows}

    async def until(self, check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
        """Poll `check` until it holds (a condition, not a sleep standing in for one)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not await check():
            assert asyncio.get_running_loop().time() < deadline, "condition never held"
            await asyncio.sleep(0.01)

    async def start(self, saga: str, params: dict[str, Any], saga_id: str) -> None:
        await self.orchestrator.start(saga, params, saga_id=saga_id)

    async def settled(self, saga_id: str, timeout: float = 10.0) -> str:
        assert await self.orchestrator.wait(saga_id, timeout), f"saga {saga_id} never settled"
        stored = await self.orchestrator.get(saga_id)
        return stored.status


class Blocked(Exception):
    """A call of a blocked operation (the test's stand-in for a participant that hangs)."""


def _blockable(decide: Decide, blocked: set[str], failed: Counter[str]) -> Decide:
    def gated(
        tx: Tx, operation: str, key: str, body: dict[str, Any], *, delivery: int = 0
    ) -> Answer:
        if operation in blocked:
            failed[operation] += 1
            raise Blocked(f"{operation} {key} is blocked")
        return decide(tx, operation, key, body, delivery=delivery)

    return gated


@asynccontextmanager
async def deployment(
    tmp: Path,
    broker: Broker,
    *,
    prefix: str = "t",
    action_timeout: float = 30.0,
    settle_timeout: float = 30.0,
    interval: float = 0.05,
    delivery_limit: int = 2,
    requeue_delay: float = 0.01,
    balances: dict[str, int] | None = None,
    stock: dict[str, int] | None = None,
    database_url: str | None = None,
    credit_faults: FaultInjector | None = None,
    relay_timing: RelayTiming = FAST_RELAY,
) -> AsyncIterator[Deployment]:
    """`database_url` None: SQLite files in `tmp`; a `postgresql://` URL: every store in it."""
    url = database_url or f"sqlite:///{tmp / 'accounts.db'}"
    settings = Settings(
        database_url=url,
        broker_prefix=prefix,
        broker_delivery_limit=delivery_limit,
        retry_deadline=action_timeout,
        settle_deadline=settle_timeout,
        tracker_interval=interval,
        mode=SagaMode.CHOREOGRAPHY,
        worker_id="test",
        _env_file=None,
    )
    store = (
        SqliteAccountStore(tmp / "accounts.db")
        if database_url is None
        else build_account_store(url)
    )
    dialect = "sqlite" if database_url is None else "postgres"
    for account_id, balance in (balances or {"acc-01": 1_000, "acc-02": 1_000}).items():
        await store.transaction(
            lambda tx, a=account_id, b=balance: accounts.open_account(
                tx, account_id=a, initial_balance=b
            )
        )
    inv = inventory.inventory_service(
        open_store(
            database_url or tmp / "inventory.db",
            schema=(*inventory.SCHEMA, *schema(dialect)),
            name="inventory",
        )
    )
    ords = orders.orders_service(
        open_store(
            database_url or tmp / "orders.db",
            schema=(*orders.SCHEMA, *schema(dialect)),
            name="orders",
        )
    )
    for sku, qty in (stock or {}).items():
        await inv.store.transaction(lambda tx, s=sku, q=qty: inventory.open_stock(tx, s, q))
    types = saga_types()
    forward, settle = retry_policies(settings)
    orchestrator = choreographed_orchestrator(
        settings,
        log=build_saga_log(settings.database_url, next_to=store),
        types=types,
        forward=forward,
        settle=settle,
    )
    runtime = await runtime_for(
        settings,
        broker=broker,
        types=types,
        account_store=store,
        kit_services=[inv, ords],
        orchestrator=orchestrator,
        requeue_delay=requeue_delay,
        relay_timing=relay_timing,
        account_faults=credit_faults,
    )
    blocked: set[str] = set()
    failed: Counter[str] = Counter()
    runtime.nodes = [
        replace(node, decide=_blockable(node.decide, blocked, failed)) for node in runtime.nodes
    ]
    await runtime.start()
    try:
        yield Deployment(store, inv, ords, orchestrator, runtime, broker, blocked, failed)
    finally:
        await runtime.stop()
        await orchestrator.close()
        await orchestrator.log.close()
        await inv.store.close()
        await ords.store.close()
        await store.close()


async def delete_topology(prefix: str) -> None:
    """Delete a process test's topology (its own prefix on the shared broker's default vhost)."""
    from repository_after.choreography.wiring import deployment_topology
    from repository_after.messaging.rabbitmq import RabbitMqBroker

    settings = Settings(broker_prefix=prefix, _env_file=None)
    broker = await RabbitMqBroker.connect(settings.broker_url.get_secret_value())
    try:
        await broker.delete(deployment_topology(settings))
    finally:
        await broker.close()
