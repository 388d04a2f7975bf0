"""The transfer demo, `sagabank demo` (`--saga transfer`, the default): run N transfers as sagas
and show that total money is conserved.

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
import random
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from repository_after.bootstrap import orchestrator_session
from repository_after.domain.money import format_minor
from repository_after.domain.saga import AT_REST, SagaStatus
from repository_after.domain.transfer import TRANSFER
from repository_after.entrypoints.demo_support import (
    DemoRequest,
    console,
    demo_settings,
    describe,
    durable_url,
    finish,
    injected_faults,
    resume,
)
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
    settings = demo_settings(
        retries=opts.retries,
        database_url=log_url or f"sqlite:///{data_dir / 'demo-sagas.db'}",
        accounts_url=accounts_url,
        worker_id=DEMO_WORKER_ID,
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


def run(request: DemoRequest) -> None:
    """`sagabank demo --saga transfer`: against `--accounts-url`, else a started account
    service with the requested credit faults."""
    data_dir, fault_mode = request.data_dir, request.fault_mode or FaultMode.BEFORE
    opts = DemoOptions(
        request.transfers,
        request.concurrency,
        request.fault_rate,
        fault_mode,
        request.seed,
        request.retries,
        request.max_amount,
    )
    log_url = durable_url(data_dir, "demo-sagas.db")
    if request.accounts_url is None:
        env = {
            "SAGABANK_DATABASE_URL": durable_url(data_dir, "demo-accounts.db"),
            "SAGABANK_CREDIT_FAILURE_RATE": str(request.fault_rate),
            "SAGABANK_CREDIT_FAILURE_MODE": fault_mode.value,
            "SAGABANK_FAULT_SEED": str(request.seed),
            "SAGABANK_ADMIN_TOKEN": "",
        }
        log_path = data_dir / "demo-accounts.log"
        with ServiceProcess(env=env, log_path=log_path) as service:
            console.print(
                f"account service started at {service.url} (books and sagas in {data_dir})"
            )
            result = asyncio.run(run_transfers(opts, service.url, data_dir, log_url=log_url))
    else:
        url = request.accounts_url.rstrip("/")
        result = asyncio.run(run_transfers(opts, url, data_dir, log_url=log_url))
    finish(
        result,
        ok=result["conserved"] and result["audit_ok"],
        json_output=request.json_output,
        report=_print_summary,
    )
