"""One choreography chaos run (`sagabank chaos --mode choreography`): transfers choreographed
over RabbitMQ through seeded broker faults, then the orchestration run's audit.

One `sagabank serve --mode choreography` process (role `all`: the account service, the tracker,
the HTTP API) on SQLite files of the run's own, reaching the broker through `BrokerProxy`, with
a topology prefix of the run's own (deleted at the end). The broker is a private node when the
run restarts it (`broker-restart`), else the given URL. Seeded faults (`choreo_schedule.py`):
kills, cuts and broker restarts one at a time at answered-saga counts; the duplicate
publications, crash points and poison inside the process (`messaging.faults`, via
`SAGABANK_MESSAGING_FAULTS`), one crash point per process generation. A watchdog starts the
process again whenever it died by itself (a crash point).

The end: settle every saga (tolerating a process that is down) -> the operator's fix for the
poison (the `fixed` file) and a retry of every parked saga (a dead-lettered one is redriven) ->
settle again -> money, audit -> stop -> the account service's records against every saga, no
operation applied twice. Exit status and report as `sagabank chaos`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from repository_after.domain.saga import AT_REST, TERMINAL, SagaStatus
from repository_after.entrypoints.service_process import ExitedWhileStarting, ServiceProcess
from sagabank_tools.chaos import load, records
from sagabank_tools.chaos.broker_proxy import BrokerProxy
from sagabank_tools.chaos.choreo_schedule import (
    CHOREOGRAPHY_FAMILIES,
    BrokerFamily,
    ChoreoSchedule,
)
from sagabank_tools.chaos.cluster import Databases
from sagabank_tools.chaos.modes import TransferMode
from sagabank_tools.chaos.rabbit_node import PrivateNode, unavailable
from sagabank_tools.chaos.report import ChaosReport

RETRY_ROUNDS = 3
#: A step's deadline in the run (`SAGABANK_RETRY_DEADLINE`), seconds: longer than any outage the
#: run injects (a broker restart: up to 40 s measured), shorter than `settle_timeout`.
RUN_DEADLINE = 120
DEFAULT_BROKER = "amqp://guest:guest@127.0.0.1:5672/"


@dataclass(frozen=True)
class ChoreoConfig:
    seed: int
    sagas: int
    families: tuple[BrokerFamily, ...] = CHOREOGRAPHY_FAMILIES
    concurrency: int = 16
    broker_url: str = DEFAULT_BROKER  # used when the run does not restart its broker
    node: PrivateNode | None = None  # a running private node (tests share one); else started
    workdir: Path | None = None
    settle_timeout: float = 180.0
    delivery_limit: int = 3


class Service:
    """The one service process, its generations and the faults that end them."""

    def __init__(
        self, workdir: Path, env: dict[str, str], crashes: list[str], faults: dict[str, object]
    ) -> None:
        self.workdir, self.env, self.crashes, self.faults = workdir, env, crashes, faults
        self.process: ServiceProcess | None = None
        self.lock = asyncio.Lock()
        self.up = asyncio.Event()
        self.kills = 0
        self.generation = 0

    def _spawn(self, port: int | None) -> ServiceProcess:
        """Start a generation; its crash point is the first not yet fired (per the log). A
        start that dies (a crash point fired at once, the broker restarting) is tried again."""
        log = self.workdir / "serve.log"
        for _ in range(20):
            fired = _log_counts(log)
            done = fired["crash-handler"] + fired["crash-consumer"] + fired["crash-relay"]
            crash = self.crashes[done] if done < len(self.crashes) else None
            self.generation += 1
            env = {
                **self.env,
                "SAGABANK_MESSAGING_FAULTS": json.dumps({**self.faults, "crash": crash}),
            }
            try:
                return ServiceProcess(env=env, role="all", port=port, log_path=log).start(
                    timeout=90, attempts=1
                )
            except ExitedWhileStarting:
                continue
        raise RuntimeError(f"the service does not start; see {log}")

    async def start(self) -> str:
        self.process = await asyncio.to_thread(self._spawn, None)
        self.up.set()
        return self.process.url

    async def restart(self, *, kill: bool) -> None:
        """SIGKILL (or, after a crash point, just reap) and start again on the same port."""
        async with self.lock:
            old = self.process
            assert old is not None
            self.up.clear()
            await asyncio.to_thread(old.kill)
            self.kills += int(kill)
            self.process = await asyncio.to_thread(self._spawn, old.port)
            self.up.set()

    def died(self) -> bool:
        process = self.process
        return process is not None and process.proc is not None and process.proc.poll() is not None

    async def watch(self, stop: asyncio.Event) -> None:
        """Start the process again whenever it died by itself (a crash point fired)."""
        while not stop.is_set():
            if self.died() and not self.lock.locked():
                await self.restart(kill=False)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.2)


async def _get(client: httpx.AsyncClient, service: Service, path: str) -> httpx.Response:
    """GET through restarts: a request that met a dead process waits for the next one."""
    while True:
        await service.up.wait()
        try:
            return await client.get(path)
        except httpx.TransportError:
            await asyncio.sleep(0.2)


async def _settle(url: str, service: Service, ids: list[str], deadline: float) -> dict[str, str]:
    statuses: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=url, timeout=10.0) as client:
        while True:
            for tx in ids:
                if statuses.get(tx) not in AT_REST:
                    statuses[tx] = (await _get(client, service, f"/transfers/{tx}")).json()[
                        "status"
                    ]
            if all(s in AT_REST for s in statuses.values()) or time.monotonic() > deadline:
                return statuses
            await asyncio.sleep(0.2)  # polling a remote state until the sagas come to rest


async def _retry_parked(
    url: str, service: Service, statuses: dict[str, str], deadline: float
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
                answer = await client.post(f"/sagas/transfer/{tx}/retry")
                if answer.status_code == 409:  # no longer parked: the tracker resumed it when
                    continue  # a later message carried its course on (docs/choreography.md)
                answer.raise_for_status()
        retried += parked
        statuses.update(await _settle(url, service, parked, deadline))
    return sorted(set(retried))


def _log_counts(log: Path) -> Counter[str]:
    text = log.read_text(errors="replace") if log.exists() else ""
    found: Counter[str] = Counter()
    found["duplicate-publish"] = len(re.findall(r"chaos: duplicate publication", text))
    found["crash-handler"] = len(re.findall(r"chaos: crash point consumer-before-commit", text))
    found["crash-consumer"] = len(re.findall(r"chaos: crash point consumer-after-commit", text))
    found["crash-relay"] = len(re.findall(r"chaos: crash point relay-after-publish", text))
    found["poison"] = len(set(re.findall(r"chaos: poisoned message \S+ of saga (\S+)", text)))
    return found


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


def _env(
    workdir: Path, proxy_port: int, vhost: str, prefix: str, limit: int, token: str
) -> dict[str, str]:
    database = workdir / "sagabank.db"
    return {
        "SAGABANK_MODE": "choreography",
        "SAGABANK_DATABASE_URL": f"sqlite:///{database}",
        "SAGABANK_INVENTORY_DATABASE_URL": f"sqlite:///{workdir / 'inventory.db'}",
        "SAGABANK_ORDERS_DATABASE_URL": f"sqlite:///{workdir / 'orders.db'}",
        "SAGABANK_BROKER_URL": f"amqp://guest:guest@127.0.0.1:{proxy_port}/{vhost}",
        "SAGABANK_BROKER_PREFIX": prefix,
        "SAGABANK_BROKER_DELIVERY_LIMIT": str(limit),
        "SAGABANK_RELAY_CLAIM_TTL": "3",  # a crashed relay's rows wait 3 s, not 30
        # A time-out is this run's detector of a lost message, so a step's deadline must outlast
        # every outage the run injects: a private node's restart took 40 s on 2 loaded cores
        # (seed 3, 2026-12-05), past the default 30 s, and timed out 566 sagas it had only
        # delayed (`timed_out`).
        "SAGABANK_RETRY_DEADLINE": str(RUN_DEADLINE),
        "SAGABANK_ADMIN_TOKEN": "",
        "SAGABANK_SERVICE_TOKEN": token,
        "SAGABANK_READ_TOKEN": "",
        "SAGABANK_PARTICIPANT_FAULTS": "{}",
        "SAGABANK_CREDIT_FAILURE_RATE": "0",
        "SAGABANK_DEMO_ACCOUNTS": "10",
        "SAGABANK_DEMO_BALANCE": "100000",
        "SAGABANK_TRANSFER_WAIT": "0",
        "SAGABANK_LOG_JSON": "false",
        "SAGABANK_LOG_LEVEL": "WARNING",
    }


async def run(config: ChoreoConfig) -> ChaosReport:
    workdir = config.workdir or Path(tempfile.mkdtemp(prefix="sagabank-chaos-choreo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    schedule = ChoreoSchedule(config.seed, config.families)
    mode = TransferMode(config.seed, config.sagas)
    ids = [saga.transaction_id for saga in mode.planned]
    report = ChaosReport(
        config.seed,
        "transfer",
        config.sagas,
        [f.value for f in config.families],
        config.concurrency,
        workdir=str(workdir),
        mode="choreography",
    )
    restarts = BrokerFamily.BROKER_RESTART in config.families
    node = config.node
    own_node = restarts and node is None
    if own_node:
        reason = unavailable()
        if reason is not None:
            raise RuntimeError(f"broker-restart: {reason}")
        node = await asyncio.to_thread(lambda: PrivateNode().start())
    broker_url = node.url if restarts and node is not None else config.broker_url
    where = urlsplit(broker_url)
    vhost = where.path.lstrip("/")
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
    env = _env(workdir, await proxy.start(), vhost, prefix, config.delivery_limit, token)
    service = Service(workdir, env, schedule.crashes(), faults)
    started = time.monotonic()
    stop = asyncio.Event()
    counts: Counter[str] = Counter()
    try:
        url = await service.start()
        watchdog = asyncio.create_task(service.watch(stop))
        async with httpx.AsyncClient(base_url=url, timeout=10.0) as client:
            report.money_before = (await client.get("/accounts")).json()["total"]
            probe = await client.post("/void_credit", headers={"transaction-id": "chaos-probe"})
            report.strangers_refused = probe.status_code == 401

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
        statuses = await _settle(url, service, ids, deadline)
        fixed.write_text("the operator's fix\n")  # the poison is handled from now on
        parked = await _retry_parked(url, service, statuses, deadline)
        async with httpx.AsyncClient(base_url=url, timeout=10.0) as client:
            accounts = (await _get(client, service, "/accounts")).json()
            audit = (await _get(client, service, "/audit")).json()
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

    counts.update(_log_counts(workdir / "serve.log"))
    report.elapsed_seconds = round(time.monotonic() - started, 1)
    report.outcomes = dict(Counter(statuses.values()))
    report.faults = {f.value: counts[f.value] for f in config.families}
    report.faults["connections-cut"] = proxy.cuts
    report.resubmitted = result.resubmitted
    report.parked_then_retried = len(parked)
    report.money_after = accounts["total"]
    report.negative_balances = [
        f"{a['account_id']} = {a['balance']}" for a in accounts["accounts"] if a["balance"] < 0
    ]
    report.non_terminal = sorted(f"{t} {s}" for t, s in statuses.items() if s not in TERMINAL)
    report.audit_violations = list(audit["violations"])
    report.unexpected_answers = result.unexpected
    database = f"sqlite:///{workdir / 'sagabank.db'}"
    report.applied_twice = records.applied_twice(database)
    mode.check(report, statuses, Databases(database, database, "", ""))
    report.timed_out = timed_out(database)
    if report.ok and config.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return report


def timed_out(database: str) -> list[str]:
    """Sagas the tracker timed out. Every fault of a run is shorter than a step's deadline in the
    run (`RUN_DEADLINE`), so a time-out means a message went missing (acked before its commit,
    say): a violation."""
    rows = records.query(
        database,
        "SELECT saga_id, data FROM saga_events WHERE data LIKE '%\"retries_exhausted\"%'",
    )
    return sorted({f"{saga} ({json.loads(data).get('operation')})" for saga, data in rows})


#: The families that fire at points of the load (the others act inside the process).
PER_POINT = (BrokerFamily.KILL_SERVICE, BrokerFamily.CONNECTION_DROP, BrokerFamily.BROKER_RESTART)
