"""PostgreSQL adapter of the account store, safe for several account-service replicas.

Same tables and invariants as SQLite (created by `migrations`, component `accounts`). SQLite gets
its serialisation from one writer; here each use case's transaction serialises what it touches:
- the first lookup of a record for a transaction id takes `pg_advisory_xact_lock` on that id, so
  duplicates of one request, or a debit and its compensation, never interleave, even when they
  reach different replicas (every use case starts by looking up its own record);
- `get_account` in a write transaction is `SELECT … FOR UPDATE`, so two debits of one account on
  different replicas read-decide-write one after the other and never overdraw;
- `UNIQUE(operation, transaction_id)` stays as the backstop: a violation retries the transaction
  once (`PostgresDatabase`), which then replays the winner's reply.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import psycopg

from repository_after.adapters.postgres_db import PostgresDatabase
from repository_after.adapters.sql_accounts import SqlAccountsTx
from repository_after.service_layer.ports import AccountsReader, AccountsTx

T = TypeVar("T")
Conn = psycopg.Connection[tuple[Any, ...]]


# Statements at module level (see sql_accounts).
_LOCK_TRANSACTION_ID = "SELECT pg_advisory_xact_lock(hashtextextended(?, 0))"
_FOR_UPDATE = " FOR UPDATE"
_SNAPSHOT = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"


class _PostgresAccountsTx(SqlAccountsTx):
    placeholder = "%s"

    def __init__(self, conn: Conn, *, writing: bool) -> None:
        super().__init__(conn)
        self._writing = writing
        self._locked: set[str] = set()

    def _guard(self, transaction_id: str) -> None:
        if self._writing and transaction_id not in self._locked:
            self._run(_LOCK_TRANSACTION_ID, (transaction_id,))
            self._locked.add(transaction_id)

    def _for_update(self) -> str:
        return _FOR_UPDATE if self._writing else ""

    def _flag(self, value: bool) -> object:
        return value


def accounts_tx(conn: Conn) -> SqlAccountsTx:
    """The account store's write face on a connection whose transaction someone else holds
    (choreography: the inbox row, the account change and the outbox row in one transaction)."""
    return _PostgresAccountsTx(conn, writing=True)


class PostgresAccountStore:
    def __init__(self, database_url: str) -> None:
        self._db = PostgresDatabase(database_url, component="accounts")

    @property
    def database(self) -> PostgresDatabase:
        return self._db

    async def transaction(self, fn: Callable[[AccountsTx], T]) -> T:
        return await self._db.transaction(lambda conn: fn(_PostgresAccountsTx(conn, writing=True)))

    async def read(self, fn: Callable[[AccountsReader], T]) -> T:
        def snapshot(conn: Conn) -> T:
            # One snapshot for the whole read, so an audit under load sees consistent books.
            conn.execute(_SNAPSHOT)
            return fn(_PostgresAccountsTx(conn, writing=False))

        return await self._db.transaction(snapshot)

    async def close(self) -> None:
        await self._db.close()
