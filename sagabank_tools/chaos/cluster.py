"""The child processes of a chaos run, and the one place their settings are built.

Every child gets its configuration from `service_env` only: the database URL of each process
comes from `Databases`, so a run against another backend (a PostgreSQL URL, say) changes that
one value and nothing else. The account service's process also hosts the order saga's inventory
and orders services (under `/inventory`, `/orders`) and the classes saga's pupils and classes
services (`/pupils`, `/classes`), each on the database `Databases` names.
The account service keeps its port and databases across SIGKILLs; the orchestrator keeps its
port and saga log, and runs recovery when it starts again.
Both run with one service token (`SAGABANK_SERVICE_TOKEN`, fresh per run): the account service
moves money only for the orchestrator, as in a configured deployment, and the fault proxy
between them passes the `Authorization` header on (also into the items of a split batch).
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from repository_after.entrypoints.service_process import ServiceProcess


@dataclass(frozen=True, slots=True)
class Databases:
    accounts: str  # SAGABANK_DATABASE_URL of the account service
    sagas: str  # SAGABANK_DATABASE_URL of the orchestrator (its saga log)
    inventory: str  # SAGABANK_INVENTORY_DATABASE_URL of the account service's process
    orders: str  # SAGABANK_ORDERS_DATABASE_URL of the account service's process
    pupils: str = ""  # SAGABANK_PUPILS_DATABASE_URL of the account service's process
    classes: str = ""  # SAGABANK_CLASSES_DATABASE_URL of the account service's process

    @classmethod
    def sqlite_in(cls, workdir: Path) -> Databases:
        accounts, sagas, inventory, orders, pupils, classes = (
            f"sqlite:///{workdir / name}.db"
            for name in ("accounts", "sagas", "inventory", "orders", "pupils", "classes")
        )
        return cls(accounts, sagas, inventory, orders, pupils, classes)

    @classmethod
    def shared(cls, database_url: str) -> Databases:
        """One (empty) PostgreSQL or MariaDB database for every service: their tables do not
        overlap."""
        return cls(*(database_url,) * 6)


@dataclass(frozen=True, slots=True)
class Tuning:
    """Orchestrator settings: an attempt timeout that the proxy's delays exceed, and settle
    retries that outlast an account-service restart (so nothing parks for want of patience)."""

    attempt_timeout: float = 0.3
    retry_attempts: int = 3
    retry_initial_backoff: float = 0.02
    retry_max_backoff: float = 0.3
    settle_attempts: int = 60
    transfer_wait: float = 5.0
    extra: dict[str, str] = field(default_factory=dict)


def service_env(
    role: str,
    databases: Databases,
    *,
    tuning: Tuning,
    service_token: str,
    accounts_url: str = "",
) -> dict[str, str]:
    """The whole environment of one child; the account service's own faults stay off (the proxy
    injects every fault, keyed by transaction id, so the schedule does not depend on timing)."""
    env = {
        "SAGABANK_ADMIN_TOKEN": "",
        "SAGABANK_SERVICE_TOKEN": service_token,
        "SAGABANK_CREDIT_FAILURE_RATE": "0",
        "SAGABANK_DEMO_ACCOUNTS": "10",
        "SAGABANK_DEMO_BALANCE": "100000",
        "SAGABANK_LOG_JSON": "false",
    }
    if role == "accounts":
        return {
            **env,
            "SAGABANK_DATABASE_URL": databases.accounts,
            "SAGABANK_INVENTORY_DATABASE_URL": databases.inventory,
            "SAGABANK_ORDERS_DATABASE_URL": databases.orders,
            "SAGABANK_PUPILS_DATABASE_URL": databases.pupils,
            "SAGABANK_CLASSES_DATABASE_URL": databases.classes,
            "SAGABANK_LOG_LEVEL": "WARNING",
        }
    return {
        **env,
        "SAGABANK_DATABASE_URL": databases.sagas,
        "SAGABANK_ACCOUNTS_URL": accounts_url,
        "SAGABANK_LOG_LEVEL": "INFO",  # recovery counts are read from this log
        "SAGABANK_ATTEMPT_TIMEOUT": str(tuning.attempt_timeout),
        "SAGABANK_RETRY_ATTEMPTS": str(tuning.retry_attempts),
        "SAGABANK_RETRY_INITIAL_BACKOFF": str(tuning.retry_initial_backoff),
        "SAGABANK_RETRY_MAX_BACKOFF": str(tuning.retry_max_backoff),
        "SAGABANK_SETTLE_ATTEMPTS": str(tuning.settle_attempts),
        "SAGABANK_TRANSFER_WAIT": str(tuning.transfer_wait),
        **tuning.extra,
    }


class Cluster:
    """The two services. Blocking process control runs in a thread, so the proxy (on the event
    loop) keeps serving while a child starts, dies or recovers."""

    def __init__(self, workdir: Path, databases: Databases, tuning: Tuning) -> None:
        self.workdir = workdir
        self.databases = databases
        self.tuning = tuning
        self.service_token = secrets.token_urlsafe(24)
        self.accounts: ServiceProcess | None = None
        self.orchestrator: ServiceProcess | None = None
        self.kills: dict[str, int] = {"accounts": 0, "orchestrator": 0}
        self._orchestrator_upstream = ""  # what the orchestrator calls: the proxy

    def _spawn(self, role: str, port: int | None, accounts_url: str = "") -> ServiceProcess:
        env = service_env(
            role,
            self.databases,
            tuning=self.tuning,
            service_token=self.service_token,
            accounts_url=accounts_url,
        )
        log = self.workdir / f"{role}.log"
        return ServiceProcess(env=env, role=role, port=port, log_path=log).start(timeout=60)

    async def start_accounts(self) -> str:
        self.accounts = await asyncio.to_thread(self._spawn, "accounts", None)
        return self.accounts.url

    async def start_orchestrator(self, accounts_url: str) -> str:
        self._orchestrator_upstream = accounts_url
        self.orchestrator = await asyncio.to_thread(self._spawn, "orchestrator", None, accounts_url)
        return self.orchestrator.url

    async def kill_and_restart(self, role: str) -> None:
        old = self.accounts if role == "accounts" else self.orchestrator
        assert old is not None, f"{role} was never started"
        await asyncio.to_thread(old.kill)
        self.kills[role] += 1
        new = await asyncio.to_thread(self._spawn, role, old.port, self._orchestrator_upstream)
        if role == "accounts":
            self.accounts = new
        else:
            self.orchestrator = new

    def stop(self) -> None:
        for process in (self.orchestrator, self.accounts):
            if process is not None:
                process.stop()
