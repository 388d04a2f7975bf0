"""The saga log's own outbox: where a choreographed saga's first message, an operator's retry
and the tracker's time-outs are written, in the SAME transaction as the log rows they go with.

The HTTP entry (`launch.ChoreographedOrchestrator.start`) creates the saga (its `started` event
and its first call's intent) and writes the first call message to the `outbox` table of the saga
log's database in one transaction (`SqlSagaLog.create_plan` + the outbox row, `write_plan`): a
saga is in the log if and only if its first message will be published. The log's relay
(`runtime`) publishes that outbox like any participant's. On SQLite in role `all` the log shares
the account store's database, so that outbox is also the account service's (one relay for both;
the inbox rows carry their consumer's name). Each write that puts a row in the outbox calls
`notify` after its commit (the runtime binds it to that relay's `OutboxRelay.notify`), so the
row goes out at once, not at the relay's next poll.

On PostgreSQL the log writes its outbox rows through its own (async) pool, in the same
transaction as its log rows, and the relay reads them through a small sync pool on the same
database (`pg_store.SharedPostgresStore`), as it reads a kit store's. A MariaDB log is refused at
start-up (docs/choreography.md, "What is missing").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from repository_after.adapters.sql_plan import Plan, Stmt
from repository_after.adapters.sqlite_saga_log import SqliteSagaLog
from repository_after.choreography.stores import SharedSqliteStore, schema
from repository_after.config import ConfigurationError
from repository_after.domain.saga import SagaEvent
from repository_after.messaging.envelope import Message
from repository_after.messaging.inbox import Notify
from repository_after.service_layer.saga_ports import Lease, SagaLog

if TYPE_CHECKING:  # psycopg is the `postgres` extra's
    from repository_after.adapters.postgres_saga_log import PostgresSagaLog
    from repository_after.choreography.pg_store import SharedPostgresStore

_INSERT = (
    "INSERT INTO outbox (message_id, exchange, routing_key, headers, body, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING"
)
_QUEUED = "SELECT 1 FROM outbox WHERE message_id = ?"


class LogOutbox:
    """The outbox beside a SQLite saga log; `store` is what the relay publishes from, `notify`
    (None until a runtime runs that relay: then only its poll publishes) wakes that relay."""

    def __init__(self, log: SagaLog, exchange: str, *, notify: Notify | None = None) -> None:
        self.exchange = exchange
        self.notify = notify
        self.store: SharedSqliteStore | SharedPostgresStore
        if isinstance(log, SqliteSagaLog):
            self.log: SqliteSagaLog | PostgresSagaLog = log
            self.store, self.dialect = SharedSqliteStore(log.database), "sqlite"
            return
        if type(log).__name__ == "PostgresSagaLog":  # psycopg is an extra: no import to check
            from repository_after.adapters.postgres_db import PostgresDatabase
            from repository_after.adapters.postgres_saga_log import PostgresSagaLog
            from repository_after.choreography.pg_store import SharedPostgresStore

            assert isinstance(log, PostgresSagaLog)
            self.log = log
            db = PostgresDatabase(log.url, component="sagas")
            self.store, self.dialect = SharedPostgresStore(db, owns=True), "postgres"
            return
        raise ConfigurationError(
            "choreography runs on a SQLite or PostgreSQL saga log (SAGABANK_DATABASE_URL)"
        )

    async def create_tables(self) -> None:
        await self.store.create_tables(schema(self.dialect))

    async def close(self) -> None:
        """Close what this outbox opened itself (the PostgreSQL relay's pool); the log is its
        owner's."""
        await self.store.close()

    def _written(self) -> None:
        """After a commit that wrote an outbox row."""
        if self.notify is not None:
            self.notify()

    def _row(self, message: Message) -> Stmt:
        return self.log.stmt(
            _INSERT,
            (
                message.message_id,
                self.exchange,
                message.routing_key,
                orjson.dumps(dict(message.headers)).decode(),
                message.body().decode(),
                message.created_at,
            ),
        )

    async def create(
        self,
        *,
        saga_id: str,
        definition: str,
        definition_version: int,
        definition_hash: str,
        params: dict[str, Any],
        events: Sequence[SagaEvent],
        status: str,
        message: Message,
    ) -> Lease | None:
        """`SagaLog.create` (unleased) and `message` in the outbox, in one transaction; None (and
        nothing written) if the saga exists."""
        create = self.log.create_plan(
            saga_id=saga_id,
            definition=definition,
            definition_version=definition_version,
            definition_hash=definition_hash,
            params=params,
            events=events,
            status=status,
            owner="",
            ttl=0.0,
        )

        def plan() -> Plan[Lease | None]:
            lease = yield from create()
            if lease is not None:
                yield self._row(message)
            return lease

        lease = await self.log.write_plan(plan)
        if lease is not None:
            self._written()
        return lease

    async def append(
        self,
        saga_id: str,
        events: Sequence[SagaEvent],
        *,
        status: str,
        lease: Lease | None,
        message: Message | None,
        release: bool = True,
    ) -> None:
        """`SagaLog.append` (releasing `lease` unless not `release`) and `message` in the
        outbox, in one transaction."""
        append = self.log.append_plan(
            saga_id, events, status=status, lease=lease, release=release and lease is not None
        )

        def plan() -> Plan[None]:
            yield from append()
            if message is not None:
                yield self._row(message)

        await self.log.write_plan(plan)
        if message is not None:
            self._written()

    async def enqueue_once(self, message: Message) -> bool:
        """Write `message` unless its id is in the outbox already; whether it was written."""

        def plan() -> Plan[bool]:
            queued = yield self.log.stmt(_QUEUED, (message.message_id,))
            if queued.rows:
                return False
            yield self._row(message)
            return True

        written = await self.log.write_plan(plan)
        if written:
            self._written()
        return written
