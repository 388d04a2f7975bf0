"""One chaos run: start the processes, drive the load through the faults, settle, audit, report.

Order matters at the end: every POST answered and every kill done -> poll each saga until it is
settled -> retry parked sagas as an operator would -> drain the proxy (late deliveries land) ->
read balances and the audit while the books are quiet -> stop both services -> read the account
service's records from its database and match them with every saga. First of all, a money call
without the service token must be refused: the run is made with the credential on.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from repository_after.domain.saga import AT_REST, TERMINAL, SagaStatus
from sagabank_tools.chaos import load, records
from sagabank_tools.chaos.cluster import Cluster, Databases, Tuning
from sagabank_tools.chaos.proxy import FaultProxy, LateDelivery
from sagabank_tools.chaos.report import ChaosReport
from sagabank_tools.chaos.schedule import ALL_FAMILIES, Family, Rates, Schedule


@dataclass(frozen=True)
class ChaosConfig:
    seed: int
    transfers: int
    families: tuple[Family, ...] = ALL_FAMILIES
    concurrency: int = 16
    rates: Rates = field(default_factory=Rates)
    tuning: Tuning = field(default_factory=Tuning)
    workdir: Path | None = None  # kept afterwards; a temporary one is removed if the run is clean
    database_url: str | None = None  # an empty PostgreSQL database; default: SQLite in workdir
    settle_timeout: float = 180.0


Views = dict[str, dict[str, Any]]  # transaction id -> the orchestrator's last JSON view


@dataclass
class Outcome:
    """The report, plus the raw material tests look at."""

    report: ChaosReport
    statuses: dict[str, str]
    views: Views
    proxy: FaultProxy
    orchestrator_url: str
    accounts_database_url: str


async def _settle(url: str, ids: list[str], deadline: float, views: Views) -> dict[str, str]:
    """Poll each saga until it is settled (or the deadline passes); keeps its last view."""
    statuses: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=url, timeout=10.0) as client:
        while True:
            for tx_id in ids:
                if statuses.get(tx_id) not in AT_REST:
                    views[tx_id] = (await client.get(f"/transfers/{tx_id}")).json()
                    statuses[tx_id] = views[tx_id]["status"]
            if all(s in AT_REST for s in statuses.values()) or time.monotonic() > deadline:
                return statuses
            await asyncio.sleep(0.2)  # polling a remote state for recovery to finish


async def _retry_parked(url: str, statuses: dict[str, str]) -> list[str]:
    parked = [t for t, s in statuses.items() if s == SagaStatus.FAILED_NEEDS_ATTENTION]
    async with httpx.AsyncClient(base_url=url, timeout=120.0) as client:
        for tx_id in parked:
            (await client.post(f"/transfers/{tx_id}/retry")).raise_for_status()
    return parked


async def _refuses_strangers(books: httpx.AsyncClient) -> bool:
    """Does the account service refuse a money call without the service token? The probe is a
    void of an id no transfer uses: were it taken, it would move no money (a tombstone)."""
    probe = await books.post("/void_credit", headers={"transaction-id": "chaos-token-probe"})
    return probe.status_code == 401


def _met(late: LateDelivery) -> str:
    """What a late request met at the account service."""
    if late.error:
        return late.error
    if late.replayed:
        return "replayed"
    return "applied" if 200 <= late.status < 300 else f"http_{late.status}"


def _recovered(log: Path) -> int:
    text = log.read_text() if log.exists() else ""
    return sum(map(int, re.findall(r"recovery: (\d+) unsettled", text)))


async def run(config: ChaosConfig) -> Outcome:
    workdir = config.workdir or Path(tempfile.mkdtemp(prefix="sagabank-chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    schedule = Schedule(config.seed, config.families, config.rates)
    databases = (
        Databases.shared(config.database_url)
        if config.database_url
        else Databases.sqlite_in(workdir)
    )
    cluster = Cluster(workdir, databases, config.tuning)
    planned = load.plan(config.seed, config.transfers)
    report = ChaosReport(
        config.seed,
        config.transfers,
        [f.value for f in config.families],
        config.concurrency,
        workdir=str(workdir),
        backend="postgresql" if config.database_url else "sqlite",
    )
    started = time.monotonic()
    accounts_url = await cluster.start_accounts()
    proxy = FaultProxy(schedule=schedule, upstream=accounts_url)
    try:
        orchestrator_url = await cluster.start_orchestrator(await proxy.start())
        async with httpx.AsyncClient(base_url=accounts_url, timeout=10.0) as books:
            report.money_before = (await books.get("/accounts")).json()["total"]
            report.strangers_refused = await _refuses_strangers(books)

        kill_at: dict[int, list[str]] = {}
        for family, role in (
            (Family.KILL_ORCHESTRATOR, "orchestrator"),
            (Family.KILL_ACCOUNTS, "accounts"),
        ):
            for n in schedule.kill_points(family, config.transfers):
                kill_at.setdefault(n, []).append(role)
        up = asyncio.Event()
        up.set()
        lock = asyncio.Lock()
        kills: list[asyncio.Task[None]] = []

        async def kill(role: str) -> None:
            async with lock:  # one kill at a time; clients wait while the orchestrator is down
                if role == "orchestrator":
                    up.clear()
                try:
                    await cluster.kill_and_restart(role)
                finally:
                    up.set()

        async def on_answer(answered: int) -> None:
            kills.extend(asyncio.create_task(kill(role)) for role in kill_at.get(answered, ()))

        result = await load.submit(
            orchestrator_url, planned, concurrency=config.concurrency, up=up, on_answer=on_answer
        )
        await asyncio.gather(*kills)
        ids = [t.transaction_id for t in planned]
        deadline = time.monotonic() + config.settle_timeout
        views: Views = {}
        statuses = await _settle(orchestrator_url, ids, deadline, views)
        parked = await _retry_parked(orchestrator_url, statuses)
        if parked:
            statuses.update(await _settle(orchestrator_url, parked, deadline, views))
        await proxy.drain(timeout=60.0)
        async with httpx.AsyncClient(base_url=accounts_url, timeout=10.0) as books:
            accounts = (await books.get("/accounts")).json()
            audit = (await books.get("/audit")).json()
    finally:
        await asyncio.to_thread(cluster.stop)
        await proxy.close()

    report.elapsed_seconds = round(time.monotonic() - started, 1)
    report.outcomes = dict(Counter(statuses.values()))
    report.faults = {f.value: n for f, n in proxy.counts.items()}
    report.faults.update({f"kill-{role}": n for role, n in cluster.kills.items() if n})
    report.late_deliveries = dict(Counter(_met(d) for d in proxy.late))
    report.batched_operations = proxy.batched
    report.resubmitted = result.resubmitted
    report.recovered_after_restart = _recovered(workdir / "orchestrator.log")
    report.parked_then_retried = len(parked)
    report.money_after = accounts["total"]
    report.negative_balances = [
        f"{a['account_id']} = {a['balance']}" for a in accounts["accounts"] if a["balance"] < 0
    ]
    report.non_terminal = sorted(f"{t} {s}" for t, s in statuses.items() if s not in TERMINAL)
    report.audit_violations = list(audit["violations"])
    report.unexpected_answers = result.unexpected
    report.applied_twice = records.applied_twice(databases.accounts)
    ops = records.read_operations(databases.accounts)
    report.record_mismatches = records.mismatches(statuses, ops)
    if report.ok and config.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return Outcome(report, statuses, views, proxy, orchestrator_url, databases.accounts)
