"""One chaos run: start the processes, drive the load through the faults, settle, audit, report.

Order matters at the end: every POST answered and every kill done -> poll each saga until it is
settled -> retry parked sagas as an operator would -> drain the proxy (late deliveries land) ->
read balances and the audits while the books are quiet -> stop both services -> read the
services' records from their databases and match them with every saga. First of all, calls
without the service token must be refused: the run is made with the credential on. What differs
between a transfer run and an order run (plan, routes, checks) is the mode's (`modes.py`).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from sagabank_tools.chaos import load, records, settling
from sagabank_tools.chaos.cluster import Cluster, Databases, Tuning
from sagabank_tools.chaos.modes import Mode, mode_for
from sagabank_tools.chaos.proxy import FaultProxy
from sagabank_tools.chaos.report import ChaosReport
from sagabank_tools.chaos.schedule import SAGA_FAMILIES, Family, Rates, Schedule
from sagabank_tools.chaos.settling import Views


@dataclass(frozen=True)
class ChaosConfig:
    seed: int
    sagas: int  # how many sagas the plan holds
    saga: str = "transfer"  # or "order"
    families: tuple[Family, ...] | None = None  # default: every family of the saga type
    concurrency: int = 16
    rates: Rates = field(default_factory=Rates)
    tuning: Tuning = field(default_factory=Tuning)
    workdir: Path | None = None  # kept afterwards; a temporary one is removed if the run is clean
    database_url: str | None = None  # an empty PostgreSQL / MariaDB database; default: SQLite
    settle_timeout: float = 180.0

    @property
    def resolved_families(self) -> tuple[Family, ...]:
        return SAGA_FAMILIES[self.saga] if self.families is None else self.families


def backend_of(database_url: str | None) -> str:
    """The report's name for the backend a run's services share."""
    if not database_url:
        return "sqlite"
    return "mariadb" if database_url.startswith(("mysql://", "mariadb://")) else "postgresql"


@dataclass
class Outcome:
    """The report, plus the raw material tests look at."""

    report: ChaosReport
    statuses: dict[str, str]
    views: Views
    proxy: FaultProxy
    orchestrator_url: str
    databases: Databases

    @property
    def accounts_database_url(self) -> str:
        return self.databases.accounts


async def _drive(
    config: ChaosConfig, schedule: Schedule, cluster: Cluster, mode: Mode, url: str
) -> load.LoadResult:
    """POST the plan through the kills: each kill fires after its count of answered sagas."""
    kill_at: dict[int, list[str]] = {}
    for family, role in (
        (Family.KILL_ORCHESTRATOR, "orchestrator"),
        (Family.KILL_ACCOUNTS, "accounts"),
    ):
        for n in schedule.kill_points(family, config.sagas):
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
        url,
        mode.start_path,
        mode.planned,
        concurrency=config.concurrency,
        up=up,
        on_answer=on_answer,
    )
    await asyncio.gather(*kills)
    return result


async def run(config: ChaosConfig) -> Outcome:
    workdir = config.workdir or Path(tempfile.mkdtemp(prefix="sagabank-chaos-"))
    workdir.mkdir(parents=True, exist_ok=True)
    families = config.resolved_families
    schedule = Schedule(config.seed, families, config.rates)
    databases = (
        Databases.shared(config.database_url)
        if config.database_url
        else Databases.sqlite_in(workdir)
    )
    cluster = Cluster(workdir, databases, config.tuning)
    mode = mode_for(config.saga, config.seed, config.sagas)
    report = ChaosReport(
        config.seed,
        config.saga,
        config.sagas,
        [f.value for f in families],
        config.concurrency,
        workdir=str(workdir),
        backend=backend_of(config.database_url),
    )
    started = time.monotonic()
    accounts_url = await cluster.start_accounts()
    proxy = FaultProxy(schedule=schedule, upstream=accounts_url)
    token = {"authorization": f"Bearer {cluster.service_token}"}
    try:
        orchestrator_url = await cluster.start_orchestrator(await proxy.start())
        async with (
            httpx.AsyncClient(base_url=accounts_url, timeout=10.0) as stranger,
            httpx.AsyncClient(base_url=accounts_url, timeout=10.0, headers=token) as service,
        ):
            report.money_before = (await stranger.get("/accounts")).json()["total"]
            report.strangers_refused = await settling.refuses_strangers(stranger, mode.probes)
            await mode.prepare(service)

        result = await _drive(config, schedule, cluster, mode, orchestrator_url)
        ids = [saga.transaction_id for saga in mode.planned]
        deadline = time.monotonic() + config.settle_timeout
        views: Views = {}
        statuses = await settling.settle(orchestrator_url, ids, mode.view_path, deadline, views)
        parked = await settling.retry_parked(orchestrator_url, statuses, mode.retry_path)
        if parked:
            statuses.update(
                await settling.settle(orchestrator_url, parked, mode.view_path, deadline, views)
            )
        await proxy.drain(timeout=60.0)
        async with httpx.AsyncClient(base_url=accounts_url, timeout=10.0) as books:
            accounts = (await books.get("/accounts")).json()
            audit = (await books.get("/audit")).json()
            await mode.read_live(books)
    finally:
        await asyncio.to_thread(cluster.stop)
        await proxy.close()

    report.elapsed_seconds = round(time.monotonic() - started, 1)
    report.outcomes = dict(Counter(statuses.values()))
    report.refusals = settling.refusals(views)
    report.faults = {f.value: n for f, n in proxy.counts.items()}
    report.faults.update({f"kill-{role}": n for role, n in cluster.kills.items() if n})
    report.late_deliveries = dict(Counter(settling.met(d) for d in proxy.late))
    report.batched_operations = proxy.batched
    report.resubmitted = result.resubmitted
    report.recovered_after_restart = settling.recovered(workdir / "orchestrator.log")
    report.parked_then_retried = len(parked)
    report.record_end(
        accounts=accounts,
        statuses=statuses,
        audit=audit,
        unexpected=result.unexpected,
        applied_twice=records.applied_twice(databases.accounts),
    )
    mode.check(report, statuses, databases)
    if report.ok and config.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return Outcome(report, statuses, views, proxy, orchestrator_url, databases)
