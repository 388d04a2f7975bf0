"""Where each service's inbox, outbox and turns live, and how each decides a call.

The inventory and orders services keep theirs in their kit store (`schema`, given to the store
with the service's own tables). The account service's database is not a kit store (its
`SqliteAccountStore` speaks `AccountsTx`), so `SharedSqliteStore` opens a kit-shaped face on the
SAME `SqliteDatabase` (one connection, one writer thread, one group commit): the inbox row, the
account change and the outbox row commit in one transaction, and in role `all` the saga log,
which shares that database too, holds the starting outbox (`launch`). On PostgreSQL the face is
`pg_store.SharedPostgresStore`, one transaction of the account store's pool.

A `Decide` is a service's kit rules (`Operations.decide`) inside the caller's transaction; it
raises `Rejected` for a refusal the kit does not record, which names no write (the kit raises it
before writing), so the caller may go on in the same transaction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError

from repository_after.adapters.sql_accounts import SqlAccountsTx
from repository_after.adapters.sqlite_db import SqliteDatabase
from repository_after.choreography.account_faults import FaultDraw
from repository_after.messaging.schema import messaging_schema
from repository_after.participant_kit import ParticipantService
from repository_after.participant_kit.records import Answer, error
from repository_after.participant_kit.storage import SqliteTx, Tx
from repository_after.service_layer import accounts
from repository_after.service_layer.faults import FaultPoint

T = TypeVar("T")
Body = dict[str, Any]


class Decide(Protocol):
    """(tx, operation, key, body) -> the kit's answer; raises `participant_kit.Rejected`.
    `delivery`: the message's earlier deliveries (`Message.delivery_count`), for fault draws."""

    def __call__(
        self, tx: Tx, operation: str, key: str, body: Body, *, delivery: int = 0
    ) -> Answer: ...


#: The turns a service decided (`reactor`): per saga and turn (`domain.choreography.ordinal`),
#: whether the call was `performed` or `timed_out`; the first to commit wins, the other is
#: dropped.
TURNS_SCHEMA: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS choreography_turns (saga_id TEXT NOT NULL,"
    " turn INTEGER NOT NULL, decided TEXT NOT NULL, decided_at TEXT NOT NULL,"
    " PRIMARY KEY (saga_id, turn))",
)


def schema(dialect: str = "sqlite") -> tuple[str, ...]:
    """The tables a choreographed service adds to its store: outbox, inbox and turns."""
    assert dialect in ("sqlite", "postgres")
    return (*messaging_schema("sqlite" if dialect == "sqlite" else "postgres"), *TURNS_SCHEMA)


class SharedSqliteStore:
    """A `ParticipantStore` over a `SqliteDatabase` another component opened (the account
    store's); closing it leaves the database to its owner."""

    def __init__(self, db: SqliteDatabase) -> None:
        self.db = db

    async def create_tables(self, statements: Sequence[str]) -> None:
        def create(conn: sqlite3.Connection) -> None:
            for sql in statements:
                conn.execute(sql)

        await self.db.write(create)

    async def transaction(self, fn: Callable[[Tx], T]) -> T:
        """`fn` in one write; every run of it (the group commit runs a batch again when a job
        raised) gets the same `Tx`, so what a run drew for this call holds in the next
        (`account_faults`)."""
        made: list[SqliteTx] = []

        def run(conn: sqlite3.Connection) -> T:
            if not made:
                made.append(SqliteTx(conn))
            return fn(made[0])

        return await self.db.write(run)

    async def read(self, fn: Callable[[Tx], T]) -> T:
        return await self.db.read(lambda conn: fn(SqliteTx(conn)))

    async def close(self) -> None:
        """Nothing: the database is its owner's to close."""


class InjectedFault(Exception):
    """A fault `SAGABANK_PARTICIPANT_FAULTS` asked for: the delivery fails, nothing changes."""


def kit_decide(service: ParticipantService) -> Decide:
    """A kit service's rules on its own store's transaction."""

    def decide(tx: Tx, operation: str, key: str, body: Body, *, delivery: int = 0) -> Answer:
        # `SAGABANK_PARTICIPANT_FAULTS`: in choreography any drawn fault fails the delivery before
        # anything is decided (rolled back, redelivered; over the limit, dead-lettered). Drawn at
        # every delivery (`delivery` unused): at rate 1 a call parks, as a test of parking wants.
        del delivery
        if service.faults.draw(operation, key) is not FaultPoint.NONE:
            raise InjectedFault(f"injected fault before the {operation} of {key}")
        # The body as the kit's HTTP edge hands it over: validated by the operation's model,
        # dumped again (so the recorded request is the one orchestration records).
        try:
            model = service.parse(operation, body)
        except ValidationError:
            return error(422, "invalid_request", f"{operation}: the body is not valid")
        data = None if model is None else model.model_dump(mode="json")
        with tx.savepoint():
            return service.decide(tx, operation, key, data)

    return decide


def accounts_decide(
    tx: Tx,
    operation: str,
    key: str,
    body: Body,
    *,
    delivery: int = 0,
    faults: FaultDraw | None = None,
) -> Answer:
    """The account service's rules (`service_layer.accounts.OPERATIONS`) on the connection of
    `tx`: a `SqliteTx` of `SharedSqliteStore`, or a PostgreSQL one of `pg_store`. `faults`: its
    configured faults (`account_faults.AccountFaults`), drawn first, as `kit_decide` draws a kit
    service's."""
    if faults is not None and faults.draw(tx, operation, key, delivery) is not FaultPoint.NONE:
        raise InjectedFault(f"injected fault before the {operation} of {key}")
    accounts_tx = _accounts_tx(tx)
    with accounts_tx.savepoint():
        return accounts.OPERATIONS.decide(accounts_tx, operation, key, body)


def _accounts_tx(tx: Tx) -> SqlAccountsTx:
    if isinstance(tx, SqliteTx):
        return SqlAccountsTx(tx.connection)
    # psycopg is the `postgres` extra's: imported only where a PostgreSQL store is in use.
    from repository_after.adapters.postgres_accounts import accounts_tx
    from repository_after.participant_kit.postgres import PostgresTx

    if isinstance(tx, PostgresTx):
        return accounts_tx(tx.connection)
    raise TypeError(f"no account store face for {type(tx).__name__}")
