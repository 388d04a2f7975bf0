"""Composition root: turns `Settings` into wired components. Nothing else constructs adapters.

The backend is chosen by the database URL alone (`bootstrap_storage`: `sqlite:///path` by
default, `postgresql://…`, `mysql://…` (or `mariadb://…`), `memory://` for tests); the services
an orchestrator calls are checked and reached by `bootstrap_services`. Both are parts of this
root split off by what changes them (a new backend; a new service or credential), and
re-exported here; this module keeps the orchestrator (orchestrated or choreographed), its saga
types and retry policies, and the process's container.
The role decides which half the process runs; with `all` the orchestrator still reaches the
account service over HTTP.

The command line, the demo and the bench ask here too (`build_participant`,
`orchestrator_session`, `build_account_store`, `build_saga_log`): one place decides which adapter
backs which URL, and in which order they are closed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from repository_after.adapters.http_participant import HttpParticipant
from repository_after.bootstrap_services import build_participant as build_participant
from repository_after.bootstrap_services import check_services as check_services
from repository_after.bootstrap_services import services_needed as services_needed
from repository_after.bootstrap_storage import build_account_store as build_account_store
from repository_after.bootstrap_storage import build_saga_log as build_saga_log
from repository_after.bootstrap_storage import is_mysql as is_mysql
from repository_after.bootstrap_storage import is_postgres as is_postgres
from repository_after.choreography.wiring import NoCalls
from repository_after.config import ProcessRole, SagaMode, Settings
from repository_after.domain.abc import ABC
from repository_after.domain.classes import CLASS_ASSIGNMENT
from repository_after.domain.order import ORDER
from repository_after.domain.saga_definition import SagaDefinition
from repository_after.domain.sagas import DEFINITIONS
from repository_after.domain.transfer import TRANSFER
from repository_after.entrypoints.schemas import TransferIn
from repository_after.messaging.ports import Broker
from repository_after.service_layer import accounts
from repository_after.service_layer.faults import FaultInjector
from repository_after.service_layer.orchestrator import Observer, Orchestrator, log_transition
from repository_after.service_layer.ports import AccountStore
from repository_after.service_layer.retry import RetryPolicy
from repository_after.service_layer.saga_ports import Participant
from repository_after.service_layer.saga_types import SagaTypes, check_log_versions
from repository_after.service_layer.transfers import order_rules, transfer_rules
from repository_after.services.abc import AbcIn
from repository_after.services.orders import OrderIn
from repository_after.services.pupils import GroupIn

logger = logging.getLogger(__name__)


@dataclass
class Container:
    settings: Settings
    faults: FaultInjector
    account_store: AccountStore | None = None
    orchestrator: Orchestrator | None = None
    participant: HttpParticipant | None = None
    saga_types: SagaTypes | None = None  # the types `orchestrator` runs

    async def close(self) -> None:
        if self.orchestrator is not None:
            await self.orchestrator.close()
            await self.orchestrator.log.close()
        if self.participant is not None:
            await self.participant.close()
        if self.account_store is not None:
            await self.account_store.close()


async def connect_broker(settings: Settings) -> Broker:
    """The message broker of a choreographed deployment (`SAGABANK_BROKER_URL`; aio-pika, the
    `broker` extra, imported only here)."""
    from repository_after.messaging.rabbitmq import RabbitMqBroker

    return await RabbitMqBroker.connect(settings.broker_url.get_secret_value())


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


def saga_types(extra: Collection[str] = ()) -> SagaTypes:
    """The saga types this server runs, each definition with its parameter model. (The same
    definitions as `domain.sagas.DEFINITIONS`, whose retry horizon `Settings` checks the
    retention period against; a test keeps the two equal.) `extra`: the opt-in types
    (`Settings.extra_saga_names`, `domain.sagas.OPT_IN`) registered too."""
    types = SagaTypes()
    types.register(TRANSFER, TransferIn, transfer_rules)
    types.register(ORDER, OrderIn, order_rules)
    types.register(CLASS_ASSIGNMENT, GroupIn)
    if ABC.name in extra:
        types.register(ABC, AbcIn)
    return types


def build_orchestrator(
    settings: Settings,
    *,
    participant: Participant,
    observers: tuple[Observer, ...] = (log_transition,),
    next_to: AccountStore | None = None,
    definitions: Mapping[str, SagaDefinition] = DEFINITIONS,
) -> Orchestrator:
    forward, settle = retry_policies(settings)
    types = saga_types(settings.extra_saga_names())
    if settings.mode is SagaMode.CHOREOGRAPHY:  # nobody drives: services react, a tracker logs
        from repository_after.choreography.wiring import choreographed_orchestrator

        return choreographed_orchestrator(
            settings,
            log=build_saga_log(settings.database_url, next_to=next_to),
            types=types,
            forward=forward,
            settle=settle,
            observers=observers,
            definitions=definitions,
            connect=lambda: connect_broker(settings),
        )
    return Orchestrator(
        log=build_saga_log(settings.database_url, next_to=next_to),
        participant=participant,
        definitions=definitions,
        versions=types,
        forward=forward,
        settle=settle,
        observers=observers,
        worker_id=settings.resolved_worker_id(),
        lease_ttl=settings.lease_ttl,
        unknown_version_grace=settings.resolved_unknown_version_grace(),
    )


async def check_saga_versions(settings: Settings) -> None:
    """Refuse to start (`DefinitionsChanged`) if the saga log of `settings` holds unfinished
    sagas started under a definition version this server defines with another shape
    (`saga_types.check_log_versions`). `bootstrap` checks this itself (and logs the versions
    this server lacks); `sagabank serve` asks first, so that it can say why in one line instead
    of a failed lifespan's traceback."""
    if settings.role not in (ProcessRole.ALL, ProcessRole.ORCHESTRATOR):
        return
    log = build_saga_log(settings.database_url)
    try:
        await check_log_versions(log, saga_types(settings.extra_saga_names()))
    finally:
        await log.close()


def warn_unregistered(lines: list[str]) -> None:
    """Log the versions of unfinished sagas this server does not register, one line each: it
    starts beside them (it never claims them), and the operator sees what it leaves."""
    for line in lines:
        logger.warning("unfinished sagas of a version this server does not register: %s", line)


async def bootstrap(
    settings: Settings,
    *,
    observers: tuple[Observer, ...] = (),
    definitions: Mapping[str, SagaDefinition] = DEFINITIONS,
) -> Container:
    """`observers` (metrics, traces, live events) are added to the orchestrator's log observer.

    With an orchestrator, `check_services` runs first: nothing is opened or logged before it;
    then the saga log's unfinished sagas are checked against the registered definition versions
    before anything is claimed (`DefinitionsChanged`: nothing is left open)."""
    orchestrates = settings.mode is SagaMode.ORCHESTRATION
    if settings.role in (ProcessRole.ALL, ProcessRole.ORCHESTRATOR) and orchestrates:
        check_services(settings, definitions)
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
        participant: Participant = NoCalls()
        if orchestrates:  # choreography calls nobody over HTTP
            participant = container.participant = build_participant(settings, definitions)
        container.saga_types = types = saga_types(settings.extra_saga_names())
        container.orchestrator = build_orchestrator(
            settings,
            participant=participant,
            observers=(log_transition, *observers),
            next_to=container.account_store,
            definitions=definitions,
        )
        try:
            warn_unregistered(await check_log_versions(container.orchestrator.log, types))
        except BaseException:
            await container.close()
            raise
    return container


@asynccontextmanager
async def orchestrator_session(
    settings: Settings,
    *,
    observers: tuple[Observer, ...] = (log_transition,),
    definitions: Mapping[str, SagaDefinition] = DEFINITIONS,
) -> AsyncIterator[Orchestrator]:
    """An orchestrator outside `serve` (the CLI, the demo), with its participant; on the way out
    its drivers stop before the log and the HTTP client close under them."""
    participant = build_participant(settings, definitions)
    orchestrator = build_orchestrator(
        settings, participant=participant, observers=observers, definitions=definitions
    )
    try:
        types = saga_types(settings.extra_saga_names())
        warn_unregistered(await check_log_versions(orchestrator.log, types))
        yield orchestrator
    finally:
        await orchestrator.close()
        await orchestrator.log.close()
        await participant.close()
