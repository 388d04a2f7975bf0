"""The client demo: run N transfers as sagas and show that total money is conserved.

`--saga order` runs the order saga instead, over three services of its own (`order_demo`), and
`--saga classes` the classes saga, over the pupils and classes services (`classes_demo`), and
`--saga abc` the seed system's failure table over the services A, B and C (`abc_demo`); what
follows is the transfer demo, the default.

The orchestrator runs in this process and reaches the account service over HTTP. With no
`--accounts-url` it starts its own account service (a child process on a free loopback port, the
requested fault settings). Both keep their data in a durable, named place: `--data-dir` (`./data`:
`demo-sagas.db` and `demo-accounts.db`), or the database of `SAGABANK_DATABASE_URL` when the user
set one (saga log and embedded books in it, as `sagabank serve` does).

Crash window: a demo killed mid-run leaves sagas in flight, some with money debited and not yet
credited or refunded. They are in the durable saga log, leased under the demo's stable worker id,
so the next start FIRST drives them to an end (`Orchestrator.recover`, which takes its own leases
at once) and says so, then reads the books and runs its new transfers. The books must be the same
ones the resumed sagas were started against, hence the durable accounts database too (with
`--accounts-url` they are the user's). Each run's saga ids carry a run id, so a second run starts
new sagas instead of finding the previous run's. Conservation is checked over this run (books
before vs after) and the audit over the whole books; exit status 1 if money is not conserved, the
audit finds a violation, or a saga is left unsettled.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import sys
import uuid
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from repository_after.bootstrap import orchestrator_session
from repository_after.config import SagaMode, load_settings
from repository_after.domain.abc import ABC
from repository_after.domain.classes import CLASS_ASSIGNMENT
from repository_after.domain.money import format_minor
from repository_after.domain.order import ORDER
from repository_after.domain.saga import AT_REST, SagaStatus
from repository_after.domain.transfer import TRANSFER
from repository_after.entrypoints import abc_demo, choreo_demo, classes_demo, order_demo
from repository_after.entrypoints.classes_demo import MAX_ASSIGNMENTS, ClassesDemoOptions
from repository_after.entrypoints.demo_support import (
    console,
    describe,
    durable_url,
    injected_faults,
    resume,
)
from repository_after.entrypoints.order_demo import MAX_ORDERS, OrderDemoOptions
from repository_after.entrypoints.service_process import ServiceProcess
from repository_after.service_layer.faults import FaultMode
from repository_after.service_layer.settlements import Settlements


@dataclass(frozen=True)
class DemoOptions:
    transfers: int
    concurrency: int
    fault_rate: float
    fault_mode: FaultMode
    seed: int
    retries: int
    max_amount: int


async def _books(client: httpx.AsyncClient, url: str) -> tuple[dict[str, Any], dict[str, Any]]:
    accounts = (await client.get(f"{url}/accounts")).raise_for_status().json()
    audit = (await client.get(f"{url}/audit")).raise_for_status().json()
    return accounts, audit


#: The demo's lease owner: stable across runs, so a restarted demo takes its own leases at once.
DEMO_WORKER_ID = "sagabank-demo"


async def run_transfers(
    opts: DemoOptions, accounts_url: str, data_dir: Path, *, log_url: str | None = None
) -> dict[str, Any]:
    settings = load_settings(
        database_url=log_url or f"sqlite:///{data_dir / 'demo-sagas.db'}",
        accounts_url=accounts_url,
        worker_id=DEMO_WORKER_ID,
        retry_attempts=opts.retries + 1,
        retry_initial_backoff=0.01,
        retry_max_backoff=0.2,
    )
    rng = random.Random(opts.seed)
    run_id = uuid.uuid4().hex[:8]
    # With tokens configured the account service's reads are closed: read with the read token,
    # else the admin token (the orchestrator sends the service token itself).
    token = settings.read_token or settings.admin_token
    auth = {"authorization": f"Bearer {token.get_secret_value()}"} if token else {}
    async with httpx.AsyncClient(timeout=10.0, headers=auth) as client:
        # Closed (its drivers stopped) before the books are read again below.
        async with orchestrator_session(settings, observers=()) as orchestrator:
            # Before anything else: sagas a killed previous run left in flight own money that is
            # debited and not yet credited or refunded; drive them to an end first.
            resumed, left_over = await resume(orchestrator)
            before, _ = await _books(client, accounts_url)
            ids = [a["account_id"] for a in before["accounts"]]
            if len(ids) < 2:
                raise typer.BadParameter("the account service needs at least two accounts")
            plan = [
                (*rng.sample(ids, 2), rng.randint(1, opts.max_amount))
                for _ in range(opts.transfers)
            ]
            gate = asyncio.Semaphore(opts.concurrency)
            statuses: Counter[str] = Counter()
            settlements = Settlements()
            faults_before = await injected_faults(client, accounts_url)
            with Progress(console=console, transient=False) as progress:
                bar = progress.add_task("transfers", total=len(plan))

                async def one(index: int, source: str, target: str, amount: int) -> None:
                    saga_id = f"demo-{opts.seed}-{run_id}-{index:06d}"
                    async with gate:
                        _, state = await orchestrator.run(
                            TRANSFER.name,
                            {"source": source, "target": target, "amount": amount},
                            saga_id=saga_id,
                        )
                        # This run's own sagas only: how each unknown outcome was settled.
                        stored = await orchestrator.log.load(saga_id)
                    if stored is not None:
                        settlements.add(stored.events)
                    statuses[state.status] += 1
                    progress.advance(bar)

                await asyncio.gather(*(one(i, *p) for i, p in enumerate(plan)))
        after, audit = await _books(client, accounts_url)
        faults_after = await injected_faults(client, accounts_url)
    unsettled = sum(n for s, n in statuses.items() if s not in AT_REST) + left_over
    return {
        "implementation": "after",
        "transfers": opts.transfers,
        "fault_mode": opts.fault_mode.value,
        "fault_rate": opts.fault_rate,
        "retries": opts.retries,
        "resumed": resumed,
        "outcomes": dict(statuses),
        "faults_injected": {k: faults_after[k] - faults_before.get(k, 0) for k in faults_after},
        "settlements": settlements.as_dict(),
        "total_before": before["total"],
        "total_after": after["total"],
        "delta": after["total"] - before["total"],
        "conserved": after["total"] == before["total"] and unsettled == 0,
        "audit_ok": audit["ok"],
        "audit_violations": audit["violations"],
        "unsettled": unsettled,
    }


SETTLEMENT_LABELS = {
    "retried_to_success": "unknown outcome, retried to success",
    "settled_already_applied": "unknown credit, void_credit: already_applied (completed)",
    "settled_voided": "unknown credit, void_credit: voided (then compensated)",
    "compensated_after_unknown": "unknown debit, compensated",
}


def _print_summary(result: dict[str, Any]) -> None:
    outcomes = result["outcomes"]
    table = Table(
        title=f"{result['transfers']} transfers, credit faults "
        f"{result['fault_rate']:.0%} ({result['fault_mode']}), "
        f"retries {result['retries']}"
    )
    table.add_column("")
    table.add_column("value", justify="right")
    for label, status in [
        ("completed", SagaStatus.COMPLETED),
        ("compensated", SagaStatus.COMPENSATED),
        ("rejected", SagaStatus.REJECTED),
        ("needs attention", SagaStatus.FAILED_NEEDS_ATTENTION),
    ]:
        table.add_row(label, str(outcomes.get(status, 0)))
    for point in ("before", "after"):
        n = result["faults_injected"].get(point, 0)
        table.add_row(f"credit faults injected {point} applying", str(n))
    for key, label in SETTLEMENT_LABELS.items():
        table.add_row(label, str(result["settlements"][key]))
    if result["resumed"]:
        table.add_row("resumed from a previous run", describe(result["resumed"]))
    table.add_row("total money before (in units)", format_minor(result["total_before"]))
    table.add_row("total money after (in units)", format_minor(result["total_after"]))
    table.add_row("audit", "ok" if result["audit_ok"] else "; ".join(result["audit_violations"]))
    table.add_row("conserved", "[green]yes[/green]" if result["conserved"] else "[red]NO[/red]")
    Console().print(table)


class DemoSaga(StrEnum):
    TRANSFER = TRANSFER.name
    ORDER = ORDER.name
    CLASSES = CLASS_ASSIGNMENT.name
    ABC = ABC.name


def demo(
    saga: Annotated[
        DemoSaga,
        typer.Option(
            help="transfers between the demo accounts, orders over the account, inventory "
            "and orders services (started as three processes), group assignments over the "
            "pupils and classes services, or the A → B → C failure table over services A, B "
            "and C and an orchestrator (four processes)"
        ),
    ] = DemoSaga.TRANSFER,
    transfers: Annotated[int, typer.Option(min=1, max=1_000_000, help="transfers to run")] = 100,
    orders: Annotated[
        int, typer.Option(min=1, max=MAX_ORDERS, help="orders to run (--saga order)")
    ] = 100,
    assignments: Annotated[
        int,
        typer.Option(min=1, max=MAX_ASSIGNMENTS, help="group assignments to run (--saga classes)"),
    ] = 60,
    concurrency: Annotated[int, typer.Option(min=1, max=512, help="sagas in flight at once")] = 8,
    fault_rate: Annotated[
        float,
        typer.Option(
            min=0.0,
            max=1.0,
            help="share of credits (and of the inventory's reserve and release, for orders; of "
            "assign, unassign and enrol, for classes) the started services fail",
        ),
    ] = 0.3,
    fault_mode: Annotated[
        FaultMode | None,
        typer.Option(
            help="a failed call is not applied (before), applied with its answer lost "
            "(after), or either (mixed); default: before for transfers, mixed for orders",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="seed of the plan and of the faults")] = 42,
    retries: Annotated[int, typer.Option(min=0, max=50, help="retries of an unknown outcome")] = 0,
    max_amount: Annotated[
        int, typer.Option(min=1, help="largest transfer, in minor units (cents)")
    ] = 30_000,
    accounts_url: Annotated[
        str | None,
        typer.Option(help="use this account service instead of starting one (transfers only)"),
    ] = None,
    data_dir: Annotated[
        Path,
        typer.Option(
            help="where the saga log (and the started service's books) are kept; "
            "SAGABANK_DATABASE_URL, if set, names the database instead"
        ),
    ] = Path("data"),
    json_output: Annotated[bool, typer.Option("--json", help="print the summary as JSON")] = False,
    fail: Annotated[
        list[str] | None,
        typer.Option(
            help="--saga abc: a row of the failure table to run (none, A:refuse, B:unknown, "
            "C:slow, C:unknown_after:once, ..., or all; repeatable); default: none and A, B, C "
            "refusing",
            show_default=False,
        ),
    ] = None,
    database_url: Annotated[
        list[str] | None,
        typer.Option(
            help="--saga abc: the services' databases, one URL with {service} in it "
            "(mysql://root@127.0.0.1:3306/abc_{service}) or three; --mode choreography: the "
            "deployment's database (postgresql://...); default: SQLite files in --data-dir",
            show_default=False,
        ),
    ] = None,
    saga_mode: Annotated[
        SagaMode,
        typer.Option(
            "--mode",
            help="orchestrated over HTTP, or choreographed over RabbitMQ (SAGABANK_BROKER_URL; "
            "one `sagabank serve --mode choreography`, no faults injected)",
        ),
    ] = SagaMode.ORCHESTRATION,
) -> None:
    """Run transfers (or orders) as sagas and check that money (and stock) is conserved."""
    logging.basicConfig(level=logging.WARNING)
    data_dir.mkdir(parents=True, exist_ok=True)
    if saga_mode is SagaMode.CHOREOGRAPHY:
        if saga in (DemoSaga.CLASSES, DemoSaga.ABC):
            raise typer.BadParameter(
                "the choreographed demo runs the transfer and the order saga", param_hint="--mode"
            )
        choreo_demo.main(
            saga=saga.value,
            count=orders if saga is DemoSaga.ORDER else transfers,
            seed=seed,
            concurrency=concurrency,
            data_dir=data_dir,
            json_output=json_output,
            max_amount=max_amount,
            database_url=_one(database_url, "--mode choreography runs on one database"),
        )
        return
    if saga is DemoSaga.ABC:
        rows = abc_demo.pick_rows(fail or [])
        databases = abc_demo.service_databases(database_url or [], data_dir.resolve())
        abc_demo.main(rows, databases, data_dir.resolve(), json_output=json_output)
        return
    if saga is DemoSaga.CLASSES:
        if accounts_url is not None:
            raise typer.BadParameter("the classes demo starts its own service", param_hint="--saga")
        mode = fault_mode or FaultMode.MIXED
        class_opts = ClassesDemoOptions(assignments, concurrency, fault_rate, mode, seed, retries)
        classes_demo.main(class_opts, data_dir, json_output=json_output)
        return
    if saga is DemoSaga.ORDER:
        if accounts_url is not None:
            raise typer.BadParameter("the order demo starts its own services", param_hint="--saga")
        mode = fault_mode or FaultMode.MIXED
        order_opts = OrderDemoOptions(orders, concurrency, fault_rate, mode, seed, retries)
        order_demo.main(order_opts, data_dir, json_output=json_output)
        return
    fault_mode = fault_mode or FaultMode.BEFORE
    opts = DemoOptions(transfers, concurrency, fault_rate, fault_mode, seed, retries, max_amount)
    log_url = durable_url(data_dir, "demo-sagas.db")
    if accounts_url is None:
        env = {
            "SAGABANK_DATABASE_URL": durable_url(data_dir, "demo-accounts.db"),
            "SAGABANK_CREDIT_FAILURE_RATE": str(fault_rate),
            "SAGABANK_CREDIT_FAILURE_MODE": fault_mode.value,
            "SAGABANK_FAULT_SEED": str(seed),
            "SAGABANK_ADMIN_TOKEN": "",
        }
        log_path = data_dir / "demo-accounts.log"
        with ServiceProcess(env=env, log_path=log_path) as service:
            console.print(
                f"account service started at {service.url} (books and sagas in {data_dir})"
            )
            result = asyncio.run(run_transfers(opts, service.url, data_dir, log_url=log_url))
    else:
        result = asyncio.run(
            run_transfers(opts, accounts_url.rstrip("/"), data_dir, log_url=log_url)
        )
    if json_output:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        _print_summary(result)
    if not (result["conserved"] and result["audit_ok"]):
        raise typer.Exit(1)


def _one(urls: list[str] | None, why: str) -> str | None:
    if not urls:
        return None
    if len(urls) > 1:
        raise typer.BadParameter(why, param_hint="--database-url")
    return urls[0]
