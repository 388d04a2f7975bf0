"""The one service process of a choreography chaos run, its settings and what its log says.

`Service` starts `sagabank serve --mode choreography` (role `all`) and starts it again after a
SIGKILL or a crash point, each generation with the first crash point not yet fired (counted in
its log), so each fires once. `service_env` is the process's whole environment: its SQLite
files in the run's folder or the one PostgreSQL database of `--database-url` (`run_databases`),
the broker through the run's proxy, the service token, and the
services' own faults as the schedule sets them (`ChoreoSchedule.service_env`). `log_counts`
counts what fired inside the process from its log: the messaging hooks announce each fault
(`chaos: ...`), and every delivery a service fault failed is logged by the consumer with its
`InjectedFault` (`injected fault before the <operation> of <key>`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections import Counter
from pathlib import Path

import httpx

from repository_after.entrypoints.service_process import ExitedWhileStarting, ServiceProcess
from sagabank_tools.chaos.choreo_schedule import SERVICE_FAULTS
from sagabank_tools.chaos.cluster import Databases

#: Which family a service fault of an operation belongs to.
SERVICE_FAULT_FAMILY = {op: family.value for family, (_, op) in SERVICE_FAULTS.items()}


#: A step's deadline in the run (`SAGABANK_RETRY_DEADLINE`), seconds: longer than any outage the
#: run injects (measured up to 40 s), shorter than the run's `settle_timeout` (180 s).
RUN_DEADLINE = 120


def run_databases(workdir: Path, database_url: str | None) -> Databases:
    """The run's databases as the service's settings and the checks name them. On SQLite: the
    account store and the saga log in one file (role `all`), each hosted participant in a file
    of its own. On PostgreSQL: everything in the one database, as a deployment keeps it by
    default (`participant_database`); the same connection string is the same outbox, so the
    process runs one relay over it (`Runtime.named_stores`), as in production."""
    if database_url:
        return Databases.shared(database_url)
    database = f"sqlite:///{workdir / 'sagabank.db'}"
    inventory, orders, pupils, classes = (
        f"sqlite:///{workdir / name}.db" for name in ("inventory", "orders", "pupils", "classes")
    )
    return Databases(database, database, inventory, orders, pupils, classes)


def service_env(
    databases: Databases,
    *,
    broker_url: str,
    prefix: str,
    delivery_limit: int,
    token: str,
    faults: dict[str, str],
) -> dict[str, str]:
    return {
        "SAGABANK_MODE": "choreography",
        "SAGABANK_DATABASE_URL": databases.accounts,
        "SAGABANK_INVENTORY_DATABASE_URL": databases.inventory,
        "SAGABANK_ORDERS_DATABASE_URL": databases.orders,
        "SAGABANK_PUPILS_DATABASE_URL": databases.pupils,
        "SAGABANK_CLASSES_DATABASE_URL": databases.classes,
        "SAGABANK_BROKER_URL": broker_url,
        "SAGABANK_BROKER_PREFIX": prefix,
        "SAGABANK_BROKER_DELIVERY_LIMIT": str(delivery_limit),
        "SAGABANK_RELAY_CLAIM_TTL": "3",  # a crashed relay's rows wait 3 s, not 30
        # A time-out is the run's detector of a lost message, so a step's deadline must outlast
        # every outage the run injects. On a busy 2-core machine the crash points firing back to
        # back left the service down for 20 s, and a private node's restart took 40 s (seed 3,
        # 2026-12-05: 566 sagas timed out at the default 30 s that were only delayed).
        "SAGABANK_RETRY_DEADLINE": str(RUN_DEADLINE),
        "SAGABANK_ADMIN_TOKEN": "",
        "SAGABANK_SERVICE_TOKEN": token,
        "SAGABANK_READ_TOKEN": "",
        "SAGABANK_DEMO_ACCOUNTS": "10",
        "SAGABANK_DEMO_BALANCE": "100000",
        "SAGABANK_TRANSFER_WAIT": "0",
        "SAGABANK_LOG_JSON": "false",
        "SAGABANK_LOG_LEVEL": "WARNING",
        **faults,
    }


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

    @property
    def log(self) -> Path:
        return self.workdir / "serve.log"

    def _spawn(self, port: int | None) -> ServiceProcess:
        """Start a generation; its crash point is the first not yet fired (per the log). A
        start that dies (a crash point fired at once, the broker restarting) is tried again."""
        for _ in range(20):
            fired = log_counts(self.log)
            done = fired["crash-handler"] + fired["crash-consumer"] + fired["crash-relay"]
            crash = self.crashes[done] if done < len(self.crashes) else None
            self.generation += 1
            env = {
                **self.env,
                "SAGABANK_MESSAGING_FAULTS": json.dumps({**self.faults, "crash": crash}),
            }
            try:
                return ServiceProcess(env=env, role="all", port=port, log_path=self.log).start(
                    timeout=90, attempts=1
                )
            except ExitedWhileStarting:
                continue
        raise RuntimeError(f"the service does not start; see {self.log}")

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

    async def get(self, client: httpx.AsyncClient, path: str) -> httpx.Response:
        """GET through restarts: a request that met a dead process waits for the next one."""
        while True:
            await self.up.wait()
            try:
                return await client.get(path)
            except httpx.TransportError:
                await asyncio.sleep(0.2)


def log_counts(log: Path) -> Counter[str]:
    text = log.read_text(errors="replace") if log.exists() else ""
    found: Counter[str] = Counter()
    found["duplicate-publish"] = len(re.findall(r"chaos: duplicate publication", text))
    found["crash-handler"] = len(re.findall(r"chaos: crash point consumer-before-commit", text))
    found["crash-consumer"] = len(re.findall(r"chaos: crash point consumer-after-commit", text))
    found["crash-relay"] = len(re.findall(r"chaos: crash point relay-after-publish", text))
    found["poison"] = len(set(re.findall(r"chaos: poisoned message \S+ of saga (\S+)", text)))
    for operation in re.findall(r"InjectedFault: injected fault before the (\w+) of \S+", text):
        found[SERVICE_FAULT_FAMILY.get(operation, f"{operation}-before")] += 1
    return found
