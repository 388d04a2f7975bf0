"""The kit-shaped face of a PostgreSQL database another component opened: the account store's
(`PostgresAccountStore.database`) or one beside the saga log (`LogOutbox`).

On SQLite the account service's inbox, outbox and business change share one connection
(`stores.SharedSqliteStore`). Here they share one TRANSACTION of the account store's pool: the
inbox row, the account change (`postgres_accounts.accounts_tx` on the same connection) and the
outbox row commit together. What SQLite gets from its one writer, PostgreSQL gets from the
inbox's advisory lock on the message id, the account store's advisory lock on the transaction id
and `FOR UPDATE` on the account; a unique violation (a race on the inbox or a turn) runs the
whole transaction once more (`PostgresDatabase`), which then finds the winner's row.

`identity` names the database (its connection string): every face and kit store on one database
is one outbox, published by one relay per process (`runtime.Runtime.named_stores`); by default a
PostgreSQL deployment keeps the accounts, the log and every hosted participant in one database.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import psycopg

from repository_after.adapters.postgres_db import PostgresDatabase, postgres_conninfo
from repository_after.participant_kit.postgres import SCHEMA_LOCK, PostgresTx
from repository_after.participant_kit.storage import Tx

T = TypeVar("T")
Conn = psycopg.Connection[tuple[Any, ...]]

_SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"


class SharedPostgresStore:
    """A `ParticipantStore` over a `PostgresDatabase`; closing it closes the database only if
    this face opened it (`owns`)."""

    def __init__(self, db: PostgresDatabase, *, owns: bool = False) -> None:
        self.db = db
        self.owns = owns
        self.identity = postgres_conninfo(db.url)

    async def create_tables(self, statements: Sequence[str]) -> None:
        def create(conn: Conn) -> None:
            # Processes starting together race on CREATE … IF NOT EXISTS: serialised as the
            # kit's stores serialise theirs.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            tx = PostgresTx(conn)
            for sql in statements:
                tx.execute(sql)

        await self.db.transaction(create)

    async def transaction(self, fn: Callable[[Tx], T]) -> T:
        """`fn` in one transaction; a rerun (a unique violation, `PostgresDatabase`) gets the
        SAME `Tx`, on the new attempt's connection, so what the first run drew for this call
        (`account_faults`: one draw per delivery) holds in the next, as on SQLite."""
        made: list[PostgresTx] = []

        def run(conn: Conn) -> T:
            if not made:
                made.append(PostgresTx(conn))
            made[0].connection = conn
            return fn(made[0])

        return await self.db.transaction(run)

    async def read(self, fn: Callable[[Tx], T]) -> T:
        def snapshot(conn: Conn) -> T:
            conn.execute(_SNAPSHOT)
            return fn(PostgresTx(conn))

        return await self.db.transaction(snapshot)

    async def close(self) -> None:
        if self.owns:
            await self.db.close()
