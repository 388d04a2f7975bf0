"""The order demo, `sagabank demo --saga order`: N orders as sagas over three real services, with
injected faults on the payment and the inventory, and every book checked afterwards.

It starts the account service, the inventory and the orders service as three child processes
(`sagabank serve --role accounts|inventory|orders`) on free loopback ports, and runs the
orchestrator in this process. The account service fails `--fault-rate` of the credits (the
payment, the saga's pivot: `SAGABANK_CREDIT_FAILURE_*`); the inventory fails that share of its
`reserve` and `release` calls (`SAGABANK_PARTICIPANT_FAULTS`), both in `--fault-mode`, from
`--seed`. `sell`, after the payment, is left alone: a retriable step whose retries run out parks
the saga for an operator, which is not what this demo shows. It opens the shop's accounts on an
empty account service and tops each SKU up to its shelf (`order_plan`), runs the seeded plan of
orders, then reads every book (`adapters.http_order_books`) and checks them
(`order_demo_report`): the account service's audit as it answers, the order audit over this
run's orders, money and stock moved exactly as the confirmed orders say. Exit status 1 on any
violation or on a saga not at a terminal status (parked included).

Durable, like the transfer demo: books in `data_dir/demo-order.db` (the inventory and orders
services in `demo-order-inventory.db` / `demo-order-orders.db` beside it, where `sagabank serve`
would put them), the saga log in `demo-order-sagas.db`, apart from the transfer demo's; or all of
it in the database of `SAGABANK_DATABASE_URL` when the user set one. A killed run's sagas are
driven to an end first (`demo_support.resume`); each run's ids carry a run id, so a second run
starts new orders. The children get fresh random admin and service tokens each run (reads and
account opening use the admin one; the orchestrator and `POST /stock` the service one).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from repository_after.adapters.http_order_books import OrderServices, read_order_books
from repository_after.bootstrap import orchestrator_session
from repository_after.config import Settings
from repository_after.domain.order import ORDER
from repository_after.entrypoints.demo_support import (
    DemoRequest,
    console,
    demo_settings,
    durable_url,
    fault_delta,
    finish,
    injected_faults,
    own_services_fault_mode,
    resume,
    run_plan,
)
from repository_after.entrypoints.order_demo_report import print_report, run_violations, summarise
from repository_after.entrypoints.order_plan import (
    CATALOGUE,
    CUSTOMERS,
    MERCHANTS,
    plan_orders,
)
from repository_after.entrypoints.service_process import ServiceProcess
from repository_after.service_layer.faults import FaultMode
from repository_after.service_layer.order_audit import audit_orders

#: At most this many orders a run: their ledger entries must fit one listing per account.
MAX_ORDERS = 1000
#: The demo's lease owner: stable across runs, so a restarted demo takes its own leases at once.
ORDER_DEMO_WORKER_ID = "sagabank-order-demo"
#: The inventory's operations that fail on purpose: both before the payment (see above).
INVENTORY_FAULTS = ("reserve", "release")


@dataclass(frozen=True)
class OrderDemoOptions:
    orders: int
    concurrency: int
    fault_rate: float
    fault_mode: FaultMode
    seed: int
    retries: int


@dataclass(frozen=True)
class Cluster:
    """The three started services' URLs and this run's tokens."""

    accounts: str
    inventory: str
    orders: str
    admin_token: str
    service_token: str


@contextmanager
def started_services(opts: OrderDemoOptions, data_dir: Path) -> Iterator[Cluster]:
    admin, service = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    common = {
        "SAGABANK_DATABASE_URL": durable_url(data_dir, "demo-order.db"),
        "SAGABANK_INVENTORY_DATABASE_URL": "",  # beside the books: where every role finds them
        "SAGABANK_ORDERS_DATABASE_URL": "",
        "SAGABANK_ADMIN_TOKEN": admin,
        "SAGABANK_SERVICE_TOKEN": service,
        "SAGABANK_READ_TOKEN": "",
        "SAGABANK_PARTICIPANT_FAULTS": "{}",
    }
    faults = {"rate": opts.fault_rate, "mode": opts.fault_mode.value, "seed": opts.seed}
    env = {
        "accounts": {
            **common,
            "SAGABANK_DEMO_ACCOUNTS": "0",
            "SAGABANK_CREDIT_FAILURE_RATE": str(opts.fault_rate),
            "SAGABANK_CREDIT_FAILURE_MODE": opts.fault_mode.value,
            "SAGABANK_FAULT_SEED": str(opts.seed),
        },
        "inventory": {
            **common,
            "SAGABANK_PARTICIPANT_FAULTS": json.dumps(
                {"inventory": {"operations": list(INVENTORY_FAULTS), **faults}}
            ),
        },
        "orders": common,
    }
    processes = {
        role: ServiceProcess(env=env[role], role=role, log_path=data_dir / f"demo-order-{role}.log")
        for role in env
    }
    with ExitStack() as stack:
        for process in processes.values():
            stack.callback(process.stop)  # also the ones started when another one failed
        # Side by side: each start is mostly a new interpreter's imports, then a wait.
        with ThreadPoolExecutor(len(processes)) as pool:
            list(pool.map(ServiceProcess.start, processes.values()))
        urls = {role: process.url for role, process in processes.items()}
        yield Cluster(urls["accounts"], urls["inventory"], urls["orders"], admin, service)


def orchestrator_settings(opts: OrderDemoOptions, cluster: Cluster, data_dir: Path) -> Settings:
    def entry(url: str) -> dict[str, str]:
        return {"url": url, "token": cluster.service_token}

    return demo_settings(
        retries=opts.retries,
        database_url=durable_url(data_dir, "demo-order-sagas.db"),
        accounts_url=cluster.accounts,
        services={"inventory": entry(cluster.inventory), "orders": entry(cluster.orders)},
        service_token=cluster.service_token,
        worker_id=ORDER_DEMO_WORKER_ID,
    )


@asynccontextmanager
async def clients(cluster: Cluster) -> AsyncIterator[OrderServices]:
    auth = {"authorization": f"Bearer {cluster.admin_token}"}
    async with (
        httpx.AsyncClient(base_url=cluster.accounts, headers=auth, timeout=10.0) as accounts,
        httpx.AsyncClient(base_url=cluster.inventory, headers=auth, timeout=10.0) as inventory,
        httpx.AsyncClient(base_url=cluster.orders, headers=auth, timeout=10.0) as orders,
    ):
        yield OrderServices(accounts, inventory, orders)


async def open_shop(services: OrderServices, service_token: str) -> None:
    """Open the customers' and merchants' accounts the books lack; top each SKU up to its
    shelf (`POST /stock` adds to what is there)."""
    listed = (await services.accounts.get("/accounts")).raise_for_status().json()
    have = {a["account_id"] for a in listed["accounts"]}
    for account, balance in {**CUSTOMERS, **MERCHANTS}.items():
        if account not in have:
            body = {"account_id": account, "initial_balance": balance}
            (await services.accounts.post("/accounts", json=body)).raise_for_status()
    stock = await stock_levels(services)
    for product in CATALOGUE:
        short = product.shelf - stock.get(product.sku, {}).get("available", 0)
        if short > 0:
            auth = {"authorization": f"Bearer {service_token}"}
            body = {"sku": product.sku, "qty": short}
            (await services.inventory.post("/stock", json=body, headers=auth)).raise_for_status()


async def stock_levels(services: OrderServices) -> dict[str, dict[str, int]]:
    rows = (await services.inventory.get("/stock")).raise_for_status().json()["stock"]
    return {row.pop("sku"): row for row in rows}


async def money(services: OrderServices) -> dict[str, int]:
    listed = (await services.accounts.get("/accounts")).raise_for_status().json()
    balances = {a["account_id"]: a["balance"] for a in listed["accounts"]}
    return {
        "customers": sum(balances.get(a, 0) for a in CUSTOMERS),
        "merchants": sum(balances.get(a, 0) for a in MERCHANTS),
        "total": listed["total"],
    }


async def fault_counts(services: OrderServices) -> dict[str, dict[str, int]]:
    """Faults injected so far: on the payment (`credit`) and per inventory operation."""
    counts = {"credit": await injected_faults(services.accounts, "")}
    inventory = (await services.inventory.get("/faults")).raise_for_status().json()
    counts.update({f"inventory {op}": n for op, n in inventory["operations"].items()})
    return counts


async def run_orders(opts: OrderDemoOptions, cluster: Cluster, data_dir: Path) -> dict[str, Any]:
    plan = plan_orders(opts.seed, opts.orders, uuid.uuid4().hex[:8])
    async with clients(cluster) as services:
        # Closed (its drivers stopped) before the books are read again below.
        settings = orchestrator_settings(opts, cluster, data_dir)
        async with orchestrator_session(settings, observers=()) as orchestrator:
            resumed, left_over = await resume(orchestrator)
            await open_shop(services, cluster.service_token)
            stock_before, money_before = await stock_levels(services), await money(services)
            faults_before = await fault_counts(services)
            states = await run_plan(
                orchestrator, ORDER.name, plan, concurrency=opts.concurrency, label="orders"
            )
        sagas = {o.saga_id: states[o.saga_id].status for o in plan}
        books = await read_order_books(services, order_ids=[o.order_id for o in plan], sagas=sagas)
        stock_after, money_after = await stock_levels(services), await money(services)
        faults_after = await fault_counts(services)
    faults = fault_delta(faults_before, faults_after)
    stock, cash = (stock_before, stock_after), (money_before, money_after)
    return summarise(
        plan,
        states,
        options={**asdict(opts), "fault_mode": opts.fault_mode.value},
        resumed=resumed,
        left_over=left_over,
        faults=faults,
        stock=stock,
        money=cash,
        account_audit=books.account_audit,
        order_violations=audit_orders(books),
        run_violations=run_violations(plan, states, cash, stock),
    )


def main(opts: OrderDemoOptions, data_dir: Path, *, json_output: bool) -> None:
    with started_services(opts, data_dir) as cluster:
        console.print(
            f"account service at {cluster.accounts}, inventory at {cluster.inventory}, orders "
            f"at {cluster.orders} (books and sagas in {data_dir})"
        )
        result = asyncio.run(run_orders(opts, cluster, data_dir))
    finish(result, ok=result["ok"], json_output=json_output, report=print_report)


def run(request: DemoRequest) -> None:
    """`sagabank demo --saga order`: over the three services it starts, faults mixed unless
    `--fault-mode` says otherwise."""
    mode = own_services_fault_mode(request, refusal="the order demo starts its own services")
    opts = OrderDemoOptions(
        request.orders, request.concurrency, request.fault_rate, mode, request.seed, request.retries
    )
    main(opts, request.data_dir, json_output=request.json_output)
