"""One choreography chaos run (`sagabank chaos --mode choreography [--saga order]`): transfers
or orders choreographed over RabbitMQ through seeded broker and service faults, then the
orchestration run's audit.

One `sagabank serve --mode choreography` process (role `all`: the account service, the hosted
inventory and orders services, the tracker, the HTTP API; `choreo_service.py`) on SQLite files
of the run's own, or with every store in the one empty PostgreSQL database of `database_url`
(`--database-url`, as the orchestration run's; the checks read it with the same plain SQL,
`records.query`), reaching the broker through `BrokerProxy`, with a topology prefix of the run's
own (deleted at the end). The broker is a private node when the run restarts it
(`broker-restart`), else the given URL. Seeded faults (`choreo_schedule.py`): kills, cuts and
broker restarts one at a time at answered-saga counts; the duplicate publications, crash points
and poison inside the process (`messaging.faults`, via `SAGABANK_MESSAGING_FAULTS`), one crash
point per process generation; the services' own faults (`credit-before`, `reserve-before`)
through their settings. A watchdog starts the process again whenever it died by itself.

What differs between the saga types (the plan, the routes, the stock to open, the checks) is the
orchestration run's `Mode` (`modes.py`), reused as it is: `prepare` before the load, sagas
polled at `view_path` and retried at `retry_path`, `read_live` while the process still runs,
`check` once it stopped (the order audit and the three services' records for orders).

The end: settle every saga (tolerating a process that is down) -> the operator's fix for the
poison (the `fixed` file) and a retry of every parked saga (a dead-lettered one is redriven) ->
settle again -> money, audits -> stop -> the services' records against every saga, no
operation applied twice. Exit status and report as `sagabank chaos`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from repository_after.domain.saga import AT_REST, SagaStatus
from sagabank_tools.chaos import load, records, settling
from sagabank_tools.chaos.broker_proxy import BrokerProxy
from sagabank_tools.chaos.choreo_schedule import (
    SAGA_FAMILIES,
    BrokerFamily,
    ChoreoSchedule,
)
from sagabank_tools.chaos.choreo_service import Service, log_counts, run_databases, service_env
from sagabank_tools.chaos.modes import Mode, mode_for
from sagabank_tools.chaos.rabbit_node import PrivateNode, unavailable
from sagabank_tools.chaos.report import ChaosReport
from sagabank_tools.chaos.runner import backend_of
from sagabank_tools.chaos.settling import Views

RETRY_ROUNDS = 3
DEFAULT_BROKER = "amqp://guest:guest@127.0.0.1:5672/"


@dataclass(frozen=True)
class ChoreoConfig:
    seed: int
    sagas: int
    saga: str = "transfer"  # or "order", "classes"
    families: tuple[BrokerFamily, ...] | None = None  # default: every family of the saga type
    concurrency: int = 16
    broker_url: str = DEFAULT_BROKER  # used when the run does not restart its broker
    node: PrivateNode | None = None  # a running private node (tests share one); else started
    workdir: Path | None = None
    settle_timeout: float = 180.0
    delivery_limit: int = 3
    database_url: str | None = None  # an empty PostgreSQL database; default: SQLite files

    @property
    def resolved_families(self) -> tuple[BrokerFamily, ...]:
        return SAGA_FAMILIES[self.saga] if self.families is None else self.families


async def _settle(
    url: str, service: Service, mode: Mode, ids: list[str], deadline: float, views: Views
) -> dict[str, str]:
    """Poll each saga at the mode's `view_path` until it is at rest (or the deadline passes),
    through restarts; keeps its last view (the refusals are read from them)."""
    statuses: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=url, timeout=10.0) as client:
        while True:
            for tx in ids:
                if statuses.get(tx) not in AT_REST:
                    views[tx] = (await service.get(client, mode.view_path(tx))).json()
                    statuses[tx] = views[tx]["status"]
            if all(s in AT_REST for s in statuses.values()) or time.monotonic() > deadline:
                return statuses
            await asyncio.sleep(0.2)  # polling a remote state until the sagas come to rest


async def _retry_parked(
    url: str, service: Service, mode: Mode, statuses: dict[str, str], deadline: float, views: Views
) -> list[str]:
    """As an operator: retry every parked saga, settle, and again (up to `RETRY_ROUNDS`) for
    one parked anew (a second copy of its message in the dead-letter queue); the ids retried."""
    retried: list[str] = []
    for _ in range(RETRY_ROUNDS):
        parked = [t for t, s in statuses.items() if s == SagaStatus.FAILED_NEEDS_ATTENTION]
        if not parked:
            break
        async with httpx.AsyncClient(base_url=url, timeout=60.0) as client:
            for tx in parked:
                await service.up.wait()
                answer = await client.post(mode.retry_path(tx))
                if answer.status_code == 409:  # no longer parked: the tracker resumed it when
                    continue  # a later message carried its course on (docs/choreography.md)
                answer.raise_for_status()
        retried += parked
        statuses.update(await _settle(url, service, mode, parked, deadline, views))
    return sorted(set(retried))


async def _dead_letters(broker_url: str, prefix: str, *, delete: bool) -> int:
    from repository_after.choreography.wiring import deployment_topology
    from repository_after.config import load_settings
    from repository_after.messaging.rabbitmq import RabbitMqBroker

    topology = deployment_topology(load_settings(broker_prefix=prefix))
    broker = await RabbitMqBroker.connect(broker_url)
    try:
        left = len(await broker.dead_letters(topology))
        if delete:
            await broker.delete(topology)
        return left
    finally:
        await broker.close()


async def run(config: ChoreoConfig) -> ChaosReport:
    workdir = config.workdir or Path(tempfile.mkdtemp(prefix="sagabank-chaos-choreo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    families = config.resolved_families
    schedule = ChoreoSchedule(config.seed, families)
    mode = mode_for(config.saga, config.seed, config.sagas)
    ids = [saga.transaction_id for saga in mode.planned]
    report = ChaosReport(
        config.seed,
        config.saga,
        config.sagas,
        [f.value for f in families],
        config.concurrency,
        workdir=str(workdir),
        mode="choreography",
        backend=backend_of(config.database_url),
    )
    databases = run_databases(workdir, config.database_url)
    restarts = BrokerFamily.BROKER_RESTART in families
    node = config.node
    own_node = restarts and node is None
    if own_node:
        reason = unavailable()
        if reason is not None:
            raise RuntimeError(f"broker-restart: {reason}")
        node = await asyncio.to_thread(lambda: PrivateNode().start())
    broker_url = node.url if restarts and node is not None else config.broker_url
    where = urlsplit(broker_url)
    proxy = BrokerProxy(where.hostname or "127.0.0.1", where.port or 5672)
    prefix = f"sagabank-chaos-{config.seed}-{secrets.token_hex(4)}"
    fixed = workdir / "poison-fixed"
    token = secrets.token_urlsafe(24)
    faults = {
        "seed": config.seed,
        "duplicate_rate": schedule.duplicate_rate,
        "poison": schedule.poison(ids),
        "fixed": str(fixed),
    }
    proxied = f"amqp://guest:guest@127.0.0.1:{await proxy.start()}/{where.path.lstrip('/')}"
    env = service_env(
        databases,
        broker_url=proxied,
        prefix=prefix,
        delivery_limit=config.delivery_limit,
        token=token,
        faults=schedule.service_env(),
    )
    service = Service(workdir, env, schedule.crashes(), faults)
    started = time.monotonic()
    stop = asyncio.Event()
    counts: Counter[str] = Counter()
    views: Views = {}
    bearer = {"authorization": f"Bearer {token}"}
    try:
        url = await service.start()
        watchdog = asyncio.create_task(service.watch(stop))
        async with (
            httpx.AsyncClient(base_url=url, timeout=10.0) as stranger,
            httpx.AsyncClient(base_url=url, timeout=10.0, headers=bearer) as trusted,
        ):
            report.money_before = (await stranger.get("/accounts")).json()["total"]
            report.strangers_refused = await settling.refuses_strangers(stranger, mode.probes)
            await mode.prepare(trusted)

        at: dict[int, list[BrokerFamily]] = {}
        for family in PER_POINT:
            for n in schedule.points(family, config.sagas):
                at.setdefault(n, []).append(family)
        faults_lock = asyncio.Lock()
        fired: list[asyncio.Task[None]] = []

        async def fire(family: BrokerFamily) -> None:
            async with faults_lock:  # one at a time: a restart never meets a restart
                if family is BrokerFamily.KILL_SERVICE:
                    await service.restart(kill=True)
                elif family is BrokerFamily.CONNECTION_DROP:
                    await proxy.cut_when_open()
                elif node is not None:
                    await asyncio.to_thread(node.restart)
                counts[family.value] += 1

        async def on_answer(answered: int) -> None:
            fired.extend(asyncio.create_task(fire(f)) for f in at.get(answered, ()))

        result = await load.submit(
            url,
            mode.start_path,
            mode.planned,
            concurrency=config.concurrency,
            up=service.up,
            on_answer=on_answer,
        )
        await asyncio.gather(*fired)
        deadline = time.monotonic() + config.settle_timeout
        statuses = await _settle(url, service, mode, ids, deadline, views)
        fixed.write_text("the operator's fix\n")  # the poison is handled from now on
        parked = await _retry_parked(url, service, mode, statuses, deadline, views)
        async with httpx.AsyncClient(base_url=url, timeout=10.0) as client:
            accounts = (await service.get(client, "/accounts")).json()
            audit = (await service.get(client, "/audit")).json()
            await service.up.wait()
            await mode.read_live(client)
        stop.set()
        await watchdog
    finally:
        stop.set()
        if service.process is not None:
            await asyncio.to_thread(service.process.stop)
        await proxy.close()
        with contextlib.suppress(Exception):
            report.dead_letters_left = await _dead_letters(broker_url, prefix, delete=True)
        if own_node and node is not None:
            await asyncio.to_thread(node.remove)

    counts.update(log_counts(service.log))
    report.elapsed_seconds = round(time.monotonic() - started, 1)
    report.outcomes = dict(Counter(statuses.values()))
    report.refusals = settling.refusals(views)
    report.faults = {f.value: counts[f.value] for f in families}
    report.faults["connections-cut"] = proxy.cuts
    report.resubmitted = result.resubmitted
    report.parked_then_retried = len(parked)
    report.record_end(
        accounts=accounts,
        statuses=statuses,
        audit=audit,
        unexpected=result.unexpected,
        applied_twice=records.applied_twice(databases.accounts),
    )
    mode.check(report, statuses, databases)
    report.timed_out = timed_out(databases.sagas)
    if report.ok and config.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return report


def timed_out(database: str) -> list[str]:
    """Sagas the tracker timed out. Every fault of a run is shorter than a step's deadline in
    the run (`choreo_service.RUN_DEADLINE`), so a time-out means a message went missing (acked
    before its commit, say): a violation."""
    rows = records.query(
        database,
        "SELECT saga_id, data FROM saga_events WHERE data LIKE '%\"retries_exhausted\"%'",
    )
    return sorted({f"{saga} ({json.loads(data).get('operation')})" for saga, data in rows})


#: The families that fire at points of the load (the others act inside the process).
PER_POINT = (BrokerFamily.KILL_SERVICE, BrokerFamily.CONNECTION_DROP, BrokerFamily.BROKER_RESTART)
