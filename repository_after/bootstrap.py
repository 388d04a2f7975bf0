"""Composition root: turns `Settings` into wired components. Nothing else constructs adapters.

The backend is chosen by the database URL alone (`sqlite:///path` by default, `postgresql://…`,
`memory://` for tests); the account store and the saga log share the URL but not their tables.
The PostgreSQL adapters are imported only when asked for (the `postgres` extra is optional).
The role decides which half the process runs; with `all` the orchestrator still reaches the
account service over HTTP.

The command line, the demo and the bench ask here too (`build_participant`,
`orchestrator_session`, `build_account_store`, `build_saga_log`): one place decides which adapter
backs which URL, and in which order they are closed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from repository_after.adapters.http_participant import HttpParticipant
from repository_after.adapters.memory_accounts import InMemoryAccountStore
from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.adapters.sqlite_accounts import SqliteAccountStore
from repository_after.adapters.sqlite_db import sqlite_path
from repository_after.adapters.sqlite_saga_log import SqliteSagaLog
from repository_after.config import ProcessRole, Settings
from repository_after.domain.transfer import ACCOUNTS, TRANSFER
from repository_after.entrypoints.schemas import TransferIn
from repository_after.service_layer import accounts
from repository_after.service_layer.faults import FaultInjector
from repository_after.service_layer.orchestrator import Observer, Orchestrator, log_transition
from repository_after.service_layer.ports import AccountStore
from repository_after.service_layer.retry import RetryPolicy
from repository_after.service_layer.saga_ports import Participant, SagaLog
from repository_after.service_layer.saga_types import SagaTypes, check_log_versions

logger = logging.getLogger(__name__)


@dataclass
class Container:
    settings: Settings
    faults: FaultInjector
    account_store: AccountStore | None = None
    orchestrator: Orchestrator | None = None
    participant: HttpParticipant | None = None

    async def close(self) -> None:
        if self.orchestrator is not None:
            await self.orchestrator.close()
            await self.orchestrator.log.close()
        if self.participant is not None:
            await self.participant.close()
        if self.account_store is not None:
            await self.account_store.close()


def is_postgres(database_url: str) -> bool:
    return database_url.startswith(("postgresql://", "postgres://"))


def build_account_store(database_url: str) -> AccountStore:
    if database_url.startswith("memory://"):
        return InMemoryAccountStore()
    if is_postgres(database_url):
        from repository_after.adapters.postgres_accounts import PostgresAccountStore

        return PostgresAccountStore(database_url)
    return SqliteAccountStore(sqlite_path(database_url))


def build_saga_log(database_url: str, *, next_to: AccountStore | None = None) -> SagaLog:
    """`next_to`: the account store of this process; on SQLite the log shares its file's one
    connection and writer thread (no lock waits between the two, one fsync per batch)."""
    if database_url.startswith("memory://"):
        return InMemorySagaLog()
    if is_postgres(database_url):
        from repository_after.adapters.postgres_saga_log import PostgresSagaLog

        return PostgresSagaLog(database_url)
    share = next_to.database if isinstance(next_to, SqliteAccountStore) else None
    return SqliteSagaLog(sqlite_path(database_url), share=share)


def retry_policies(settings: Settings) -> tuple[RetryPolicy, RetryPolicy]:
    """(forward actions, settlements and compensations)."""
    common = {
        "initial_backoff": settings.retry_initial_backoff,
        "max_backoff": settings.retry_max_backoff,
        "attempt_timeout": settings.attempt_timeout,
    }
    forward = RetryPolicy(
        max_attempts=settings.retry_attempts, deadline=settings.retry_deadline, **common
    )
    settle = RetryPolicy(
        max_attempts=settings.settle_attempts, deadline=settings.settle_deadline, **common
    )
    return forward, settle


def saga_types() -> SagaTypes:
    """The saga types this server runs, each definition with its parameter model. (The same
    definitions as `domain.transfer.DEFINITIONS`, whose retry horizon `Settings` checks the
    retention period against; a test keeps the two equal.)"""
    types = SagaTypes()
    types.register(TRANSFER, TransferIn)
    return types


def build_participant(settings: Settings) -> HttpParticipant:
    """The orchestrator's client of the account service at `settings.resolved_accounts_url()`,
    presenting the service token (when configured) on every call."""
    token = settings.service_token
    headers = {"authorization": f"Bearer {token.get_secret_value()}"} if token else {}
    return HttpParticipant(
        {ACCOUNTS: settings.resolved_accounts_url()},
        batching=settings.participant_max_in_flight > 0,
        max_in_flight=max(1, settings.participant_max_in_flight),
        headers=headers,
    )


def build_orchestrator(
    settings: Settings,
    *,
    participant: Participant,
    observers: tuple[Observer, ...] = (log_transition,),
    next_to: AccountStore | None = None,
) -> Orchestrator:
    forward, settle = retry_policies(settings)
    types = saga_types()
    return Orchestrator(
        log=build_saga_log(settings.database_url, next_to=next_to),
        participant=participant,
        definitions=types.definitions(),
        versions=types.version,
        forward=forward,
        settle=settle,
        observers=observers,
        worker_id=settings.resolved_worker_id(),
        lease_ttl=settings.lease_ttl,
    )


async def check_saga_versions(settings: Settings) -> None:
    """Refuse to start (`DefinitionsChanged`) if the saga log of `settings` holds unfinished
    sagas started under a definition version this server does not define as it was
    (`saga_types.check_log_versions`). `bootstrap` checks this itself; `sagabank serve` asks
    first, so that it can say why in one line instead of a failed lifespan's traceback."""
    if settings.role not in (ProcessRole.ALL, ProcessRole.ORCHESTRATOR):
        return
    log = build_saga_log(settings.database_url)
    try:
        await check_log_versions(log, saga_types())
    finally:
        await log.close()


async def bootstrap(settings: Settings, *, observers: tuple[Observer, ...] = ()) -> Container:
    """`observers` (metrics, traces, live events) are added to the orchestrator's log observer.

    With an orchestrator, the saga log's unfinished sagas are checked against the registered
    definition versions before anything is claimed (`DefinitionsChanged`: nothing is left open)."""
    container = Container(
        settings=settings,
        faults=FaultInjector(
            rate=settings.credit_failure_rate,
            mode=settings.credit_failure_mode,
            seed=settings.fault_seed,
        ),
    )
    if settings.role in (ProcessRole.ALL, ProcessRole.ACCOUNTS):
        store = build_account_store(settings.database_url)
        opened = await store.transaction(
            lambda tx: accounts.open_demo_accounts(
                tx, count=settings.demo_accounts, balance=settings.demo_balance
            )
        )
        if opened:
            logger.info("opened %d demo accounts with %d each", opened, settings.demo_balance)
        container.account_store = store
    if settings.role in (ProcessRole.ALL, ProcessRole.ORCHESTRATOR):
        participant = build_participant(settings)
        container.participant = participant
        container.orchestrator = build_orchestrator(
            settings,
            participant=participant,
            observers=(log_transition, *observers),
            next_to=container.account_store,
        )
        try:
            await check_log_versions(container.orchestrator.log, saga_types())
        except BaseException:
            await container.close()
            raise
    return container


@asynccontextmanager
async def orchestrator_session(
    settings: Settings, *, observers: tuple[Observer, ...] = (log_transition,)
) -> AsyncIterator[Orchestrator]:
    """An orchestrator outside `serve` (the CLI, the demo), with its participant; on the way out
    its drivers stop before the log and the HTTP client close under them."""
    participant = build_participant(settings)
    orchestrator = build_orchestrator(settings, participant=participant, observers=observers)
    try:
        await check_log_versions(orchestrator.log, saga_types())
        yield orchestrator
    finally:
        await orchestrator.close()
        await orchestrator.log.close()
        await participant.close()
