"""Composition of a choreographed process from `Settings` (what `bootstrap` and the app's
lifespan call in `--mode choreography`; the tests call the same two functions).

- `choreographed_orchestrator(settings, log=...)`: the orchestrator's face over the saga log,
  with its tracker (whose broker is bound later, by `runtime_for`, or connected on demand by an
  operator's command: `sagas retry` redrives a dead letter);
- `runtime_for(settings, broker=..., ...)`: the messaging tables in each store, the nodes this
  process hosts (the account service on its SQLite database, the kit services on theirs), the
  tracker if it keeps the log, and their relays.
Every process declares the same topology: one queue per service every registered saga calls, and
the tracker's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from repository_after.adapters.sqlite_accounts import SqliteAccountStore
from repository_after.choreography import generations
from repository_after.choreography.account_faults import AccountFaults
from repository_after.choreography.course import topology
from repository_after.choreography.launch import ChoreographedOrchestrator
from repository_after.choreography.log_outbox import LogOutbox
from repository_after.choreography.runtime import Node, Runtime
from repository_after.choreography.stores import (
    Decide,
    SharedSqliteStore,
    accounts_decide,
    kit_decide,
    schema,
)
from repository_after.choreography.tracker import Tracker
from repository_after.config import ConfigurationError, Settings
from repository_after.domain.saga import SagaDefinition
from repository_after.domain.sagas import DEFINITIONS
from repository_after.domain.transfer import ACCOUNTS
from repository_after.messaging.faults import MessagingFaults
from repository_after.messaging.ports import Broker, BrokerError, Topology
from repository_after.messaging.relay import RelayTiming
from repository_after.participant_kit import ParticipantService
from repository_after.participant_kit.storage import ParticipantStore
from repository_after.service_layer.faults import FaultInjector
from repository_after.service_layer.ports import AccountStore
from repository_after.service_layer.retry import RetryPolicy
from repository_after.service_layer.saga_ports import CallResult, SagaLog
from repository_after.service_layer.saga_types import SagaTypes
from repository_after.service_layer.transitions import Observer
from repository_after.service_map import HOSTED_PARTICIPANTS


def deployment_topology(
    settings: Settings, definitions: Mapping[str, SagaDefinition] = DEFINITIONS
) -> Topology:
    services = sorted(set().union(*(d.services for d in definitions.values())))
    return topology(settings.broker_prefix, services, delivery_limit=settings.broker_delivery_limit)


#: Where choreography runs: SQLite files and PostgreSQL databases (not MariaDB yet, nor memory).
DURABLE = ("sqlite:", "postgres://", "postgresql://")


def check_choreography(settings: Settings) -> None:
    """Refuse (`ConfigurationError`) what choreography does not run on: a saga log, an account
    store or a hosted participant that is neither a SQLite file nor a PostgreSQL database
    (MariaDB / MySQL, memory; docs/choreography.md, "What is missing")."""
    if not settings.database_url.startswith(DURABLE):
        raise ConfigurationError(
            "--mode choreography runs on SQLite or PostgreSQL: SAGABANK_DATABASE_URL must be a "
            "sqlite:/// or postgresql:// URL"
        )
    for name in HOSTED_PARTICIPANTS:
        where = settings.participant_database(name)
        if str(where) == ":memory:" or (isinstance(where, str) and not where.startswith(DURABLE)):
            raise ConfigurationError(
                f"--mode choreography runs on SQLite or PostgreSQL: the {name} database must "
                "be a SQLite file or a postgresql:// URL"
            )


async def reach_broker(settings: Settings) -> None:
    """Connect to `SAGABANK_BROKER_URL` once and close: `ConfigurationError` naming its host and
    port (never its credentials) if it does not answer, before a server starts on it."""
    from repository_after.bootstrap import connect_broker

    try:
        broker = await connect_broker(settings)
    except BrokerError as exc:
        where = urlsplit(settings.broker_url.get_secret_value())
        raise ConfigurationError(
            f"SAGABANK_BROKER_URL: no RabbitMQ answers at {where.hostname}:{where.port or 5672} "
            f"({exc})"
        ) from None
    await broker.close()


class NoCalls:
    """The participant of an orchestrator that calls nobody (choreography: services react)."""

    async def call(self, **_: Any) -> CallResult:
        raise RuntimeError("a choreographed deployment calls no participant over HTTP")


def choreographed_orchestrator(
    settings: Settings,
    *,
    log: SagaLog,
    types: SagaTypes,
    forward: RetryPolicy,
    settle: RetryPolicy,
    observers: Sequence[Observer] = (),
    definitions: Mapping[str, SagaDefinition] = DEFINITIONS,
    connect: Callable[[], Awaitable[Broker]] | None = None,
) -> ChoreographedOrchestrator:
    topo = deployment_topology(settings, definitions)
    outbox = LogOutbox(log, topo.exchange)
    tracker = Tracker(
        outbox=outbox,
        broker=None,
        connect=connect,
        topology=topo,
        lookup=types.version,
        observers=observers,
        action_timeout=settings.retry_deadline,
        settle_timeout=settings.settle_deadline,
        owner=generations.operator_owner(settings.resolved_worker_id()),
        lease_ttl=settings.lease_ttl,
    )
    return ChoreographedOrchestrator(
        outbox=outbox,
        tracker=tracker,
        participant=NoCalls(),
        definitions=definitions,
        versions=types,
        forward=forward,
        settle=settle,
        observers=observers,
        worker_id=settings.resolved_worker_id(),
        lease_ttl=settings.lease_ttl,
        wait_limit=settings.transfer_wait,
    )


async def runtime_for(
    settings: Settings,
    *,
    broker: Broker,
    types: SagaTypes,
    account_store: AccountStore | None,
    kit_services: Sequence[ParticipantService],
    orchestrator: ChoreographedOrchestrator | None,
    definitions: Mapping[str, SagaDefinition] = DEFINITIONS,
    requeue_delay: float = 0.5,
    relay_timing: RelayTiming | None = None,
    account_faults: FaultInjector | None = None,
) -> Runtime:
    """The runtime of this process's part (not started). The kit services' stores must hold
    `stores.schema()` already (given to the store with the service's own tables).
    `account_faults`: the process's `/credit` injector (`SAGABANK_CREDIT_FAILURE_*`), drawn per
    delivery, one fault per credit at most (`account_faults.AccountFaults`); none drawn
    without it."""
    nodes: list[Node] = []
    if account_store is not None:
        shared = await _account_face(account_store)
        decide: Decide = accounts_decide
        if account_faults is not None:  # one fault per credit at most, never its last delivery
            once = AccountFaults(account_faults, in_a_row=min(1, settings.broker_delivery_limit))
            decide = partial(accounts_decide, faults=once)
        nodes.append(Node(ACCOUNTS, shared, decide))
    nodes.extend(Node(svc.name, svc.store, kit_decide(svc)) for svc in kit_services)
    tracker = None
    if orchestrator is not None:
        tracker = orchestrator.tracker
        await tracker.outbox.create_tables()
        tracker.broker = broker
        # a server: its own generation, and its worker's dead generations' leases taken back
        tracker.owner = generations.serve_owner(settings.resolved_worker_id())
        await generations.take_over_earlier(tracker.log, tracker.owner)
    return Runtime(
        broker=broker,
        topology=deployment_topology(settings, definitions),
        lookup=types.version,
        nodes=nodes,
        tracker=tracker,
        interval=settings.tracker_interval,
        requeue_delay=requeue_delay,
        relay_timing=relay_timing or RelayTiming(claim_ttl=settings.relay_claim_ttl),
        owner=settings.resolved_worker_id(),
        faults=MessagingFaults.from_env(),
    )


async def _account_face(account_store: AccountStore) -> ParticipantStore:
    """The account store's kit-shaped face with the messaging tables: on its SQLite database
    (`SharedSqliteStore`) or its PostgreSQL pool (`pg_store.SharedPostgresStore`)."""
    if isinstance(account_store, SqliteAccountStore):
        face = SharedSqliteStore(account_store.database)
        await face.create_tables(schema("sqlite"))
        return face
    if type(account_store).__name__ == "PostgresAccountStore":  # psycopg is an extra
        from repository_after.adapters.postgres_accounts import PostgresAccountStore
        from repository_after.choreography.pg_store import SharedPostgresStore

        assert isinstance(account_store, PostgresAccountStore)
        pg = SharedPostgresStore(account_store.database)
        await pg.create_tables(schema("postgres"))
        return pg
    raise ConfigurationError(
        "choreography runs on a SQLite or PostgreSQL account store (SAGABANK_DATABASE_URL)"
    )
