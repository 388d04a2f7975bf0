"""`sagabank demo --mode choreography [--saga order]`: the same sagas, choreographed over RabbitMQ.

It starts ONE `sagabank serve --mode choreography` child (role `all`: the account service, the
inventory and the orders services under `/inventory` and `/orders`, the tracker and the HTTP
API) on a free loopback port, on a fresh SQLite database of its own (`<data-dir>/choreo-<run>/`),
or on the PostgreSQL database `--database-url` names (every store in it, as a PostgreSQL
deployment keeps them by default; the run's ids and shop are its own, so runs may share one), and
a topology prefix of its own on the broker's vhost (`sagabank-demo-<run>.events`, ...), so
runs never meet (nor a deployment on the same vhost); the prefix's queues and exchanges are
deleted at the end. The broker is `SAGABANK_BROKER_URL`.

Then, as a user would, over HTTP: `POST /transfers` (or `POST /sagas/order`, after opening the
shop's accounts and stock), each with its own `transaction-id`, waiting for each saga's status
(`GET /transfers/{id}`, `GET /sagas/order/{id}`) to come to rest, as the tracker writes it. The
checks are the orchestrated demos': total money unchanged, the audit (`GET /audit`, reconciled
with the saga log) clean, no saga left unsettled; for orders also the order audit and money and
stock moved exactly as the confirmed orders say (`order_demo_report`). Exit status 1 on any
violation. No faults are injected here (the broker faults are `sagabank chaos`'s); refusals
(insufficient funds, out of stock) still compensate.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.progress import Progress

from repository_after.adapters.http_order_books import OrderServices, read_order_books
from repository_after.bootstrap import build_saga_log, saga_types
from repository_after.config import load_settings
from repository_after.domain.order import ORDER
from repository_after.domain.saga import AT_REST, TERMINAL, SagaState, replay
from repository_after.entrypoints.demo_support import console
from repository_after.entrypoints.order_demo import money, open_shop, stock_levels
from repository_after.entrypoints.order_demo_report import (
    Stock,
    print_report,
    run_violations,
    summarise,
)
from repository_after.entrypoints.order_plan import PlannedOrder, plan_orders
from repository_after.entrypoints.service_process import ServiceProcess
from repository_after.service_layer.order_audit import OrderBooks, audit_orders

#: How long one saga may take to come to rest before the demo calls it unsettled.
SETTLE_TIMEOUT = 60.0


def _env(database_url: str, prefix: str, *, demo_accounts: int, token: str) -> dict[str, str]:
    return {
        "SAGABANK_MODE": "choreography",
        "SAGABANK_DATABASE_URL": database_url,
        "SAGABANK_INVENTORY_DATABASE_URL": "",
        "SAGABANK_ORDERS_DATABASE_URL": "",
        "SAGABANK_BROKER_PREFIX": prefix,
        "SAGABANK_ADMIN_TOKEN": "",
        "SAGABANK_SERVICE_TOKEN": token,  # `POST /inventory/stock`; no saga call uses HTTP
        "SAGABANK_READ_TOKEN": "",
        "SAGABANK_PARTICIPANT_FAULTS": "{}",
        "SAGABANK_CREDIT_FAILURE_RATE": "0",
        "SAGABANK_DEMO_ACCOUNTS": str(demo_accounts),
        "SAGABANK_TRANSFER_WAIT": "0",
    }


async def _run_all(
    ids: list[str], start: Callable[[str], Awaitable[None]], status: Callable[[str], Awaitable[str]]
) -> dict[str, str]:
    """Start every saga (`concurrency` at a time by the caller's client limits), then wait for
    each to come to rest; id -> status."""
    found: dict[str, str] = {}
    with Progress(console=console, transient=False) as progress:
        bar = progress.add_task("sagas", total=len(ids))

        async def one(saga_id: str) -> None:
            await start(saga_id)
            deadline = time.monotonic() + SETTLE_TIMEOUT
            while (now := await status(saga_id)) not in AT_REST:
                if time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            found[saga_id] = now
            progress.advance(bar)

        await asyncio.gather(*(one(saga_id) for saga_id in ids))
    return found


async def _transfers(
    url: str, n: int, seed: int, concurrency: int, run: str, max_amount: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=30.0, limits=limits) as client:
        before = (await client.get("/accounts")).raise_for_status().json()
        ids = [a["account_id"] for a in before["accounts"]]
        plan = {
            f"choreo-{run}-{i:05d}": (*rng.sample(ids, 2), rng.randint(1, max_amount))
            for i in range(n)
        }

        async def start(saga_id: str) -> None:
            source, target, amount = plan[saga_id]
            body = {"source": source, "target": target, "amount": amount}
            reply = await client.post("/transfers", json=body, headers={"transaction-id": saga_id})
            reply.raise_for_status()

        async def status(saga_id: str) -> str:
            found: str = (await client.get(f"/transfers/{saga_id}")).json()["status"]
            return found

        statuses = await _run_all(list(plan), start, status)
        after = (await client.get("/accounts")).raise_for_status().json()
        audit = (await client.get("/audit")).raise_for_status().json()
    unsettled = sum(1 for s in statuses.values() if s not in TERMINAL)
    return {
        "saga": "transfer",
        "mode": "choreography",
        "transfers": n,
        "outcomes": dict(Counter(statuses.values())),
        "total_before": before["total"],
        "total_after": after["total"],
        "conserved": after["total"] == before["total"],
        "audit_ok": audit["ok"],
        "audit_violations": audit["violations"],
        "unsettled": unsettled,
        "ok": after["total"] == before["total"] and audit["ok"] and unsettled == 0,
    }


@dataclass(frozen=True)
class _OrderRun:
    """What the order demo read while the server ran; the log is read after it stopped."""

    plan: list[PlannedOrder]
    books: OrderBooks
    stock: tuple[Stock, Stock]
    money: tuple[dict[str, int], dict[str, int]]


async def _orders(url: str, n: int, seed: int, concurrency: int, run: str, token: str) -> _OrderRun:
    plan = plan_orders(seed, n, run)
    limits = httpx.Limits(max_connections=concurrency)
    async with (
        httpx.AsyncClient(base_url=url, timeout=30.0, limits=limits) as accounts,
        httpx.AsyncClient(base_url=f"{url}/inventory", timeout=30.0) as inventory,
        httpx.AsyncClient(base_url=f"{url}/orders", timeout=30.0) as orders,
    ):
        services = OrderServices(accounts, inventory, orders)
        await open_shop(services, token)
        stock_before, money_before = await stock_levels(services), await money(services)
        by_id = {order.saga_id: order for order in plan}

        async def start(saga_id: str) -> None:
            body = by_id[saga_id].params()
            reply = await accounts.post(
                "/sagas/order", json=body, headers={"transaction-id": saga_id}
            )
            reply.raise_for_status()

        async def status(saga_id: str) -> str:
            found: str = (await accounts.get(f"/sagas/order/{saga_id}")).json()["status"]
            return found

        statuses = await _run_all(list(by_id), start, status)
        books = await read_order_books(
            services, order_ids=[o.order_id for o in plan], sagas=statuses
        )
        stock_after, money_after = await stock_levels(services), await money(services)
    return _OrderRun(plan, books, (stock_before, stock_after), (money_before, money_after))


def _order_summary(
    found: _OrderRun, states: dict[str, SagaState], seed: int, concurrency: int
) -> dict[str, Any]:
    return summarise(
        found.plan,
        states,
        options={
            "mode": "choreography",
            "seed": seed,
            "concurrency": concurrency,
            "fault_rate": 0.0,
            "fault_mode": "none",
            "retries": 0,
        },
        resumed={},
        left_over=0,
        faults={},
        stock=found.stock,
        money=found.money,
        account_audit=found.books.account_audit,
        order_violations=audit_orders(found.books),
        run_violations=run_violations(found.plan, states, found.money, found.stock),
    )


async def _states(database_url: str, saga_ids: list[str]) -> dict[str, SagaState]:
    """Each saga's state, folded from the log the tracker kept."""
    log = build_saga_log(database_url)
    types = saga_types()
    try:
        states = {}
        for saga_id in saga_ids:
            stored = await log.load(saga_id)
            assert stored is not None, saga_id
            definition = types.version(stored.definition, stored.definition_version)
            states[saga_id] = replay(definition, stored.events)
        return states
    finally:
        await log.close()


async def _delete_topology(prefix: str) -> None:
    from repository_after.choreography.wiring import deployment_topology
    from repository_after.messaging.rabbitmq import RabbitMqBroker

    settings = load_settings(broker_prefix=prefix)
    broker = await RabbitMqBroker.connect(settings.broker_url.get_secret_value())
    try:
        await broker.delete(deployment_topology(settings))
    finally:
        await broker.close()


def main(
    *,
    saga: str,
    count: int,
    seed: int,
    concurrency: int,
    data_dir: Path,
    json_output: bool,
    max_amount: int = 30_000,
    database_url: str | None = None,
) -> None:
    run = uuid.uuid4().hex[:8]
    where = data_dir / f"choreo-{run}"
    where.mkdir(parents=True, exist_ok=True)
    prefix = f"sagabank-demo-{run}"
    database = database_url or f"sqlite:///{where / 'sagabank.db'}"
    token = secrets.token_urlsafe(24)
    env = _env(database, prefix, demo_accounts=10 if saga != ORDER.name else 0, token=token)
    try:
        with ServiceProcess(env=env, role="all", log_path=where / "serve.log") as service:
            console.print(
                f"sagabank serve --mode choreography at {service.url} (data in {where}, "
                f"broker prefix {prefix})"
            )
            if saga == ORDER.name:
                ran = asyncio.run(_orders(service.url, count, seed, concurrency, run, token))
            else:
                result = asyncio.run(
                    _transfers(service.url, count, seed, concurrency, run, max_amount)
                )
    finally:
        asyncio.run(_delete_topology(prefix))
    if saga == ORDER.name:  # the saga log, read once the server closed it
        states = asyncio.run(_states(database, [o.saga_id for o in ran.plan]))
        result = _order_summary(ran, states, seed, concurrency)
    result = {**result, "broker_prefix": prefix, "data": str(where)}
    if json_output:
        sys.stdout.write(json.dumps(result) + "\n")
    elif saga == ORDER.name:
        print_report(result)
    else:
        console.print(
            f"{result['transfers']} transfers choreographed: {result['outcomes']}; total "
            f"{result['total_before']} before, {result['total_after']} after; audit "
            f"{'ok' if result['audit_ok'] else result['audit_violations']}; unsettled "
            f"{result['unsettled']}"
        )
        console.print("[green]conserved[/green]" if result["ok"] else "[red]VIOLATION[/red]")
    if not result["ok"]:
        raise typer.Exit(1)
