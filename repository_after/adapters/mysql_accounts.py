"""MariaDB / MySQL adapter of the account store, safe for several account-service replicas.

The shared SQL (`sql_accounts`) in MySQL's words (`mysql_dialect.translate`), on the tables of
`migrations` (component `accounts`, dialect `mysql`). As on PostgreSQL, each use case's
transaction serialises what it touches (`mysql_db` says why READ COMMITTED):
- the first lookup of a record for a transaction id takes a named lock on that id
  (`GET_LOCK`, released when the transaction ends), so duplicates of one request, or a debit and
  its compensation, never interleave, even on different replicas;
- `get_account` in a write transaction is `SELECT ... FOR UPDATE`, so two debits of one account
  read-decide-write one after the other and never overdraw (the balance's CHECK is the
  backstop);
- `PRIMARY KEY (operation, transaction_id)` stays the backstop of exactly once: a duplicate key
  (or a deadlock, or a lock wait timeout) runs the transaction once more (`MysqlDatabase`), which
  then replays the winner's reply.
MySQL's UPDATE returns no rows, so the new balance is read back in the same transaction, from
the row this transaction has just changed and still holds locked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from repository_after.adapters.mysql_db import Conn, undo_to_savepoint
from repository_after.adapters.mysql_dialect import translate
from repository_after.adapters.mysql_transactions import MysqlDatabase
from repository_after.adapters.sql_accounts import Cursor, SqlAccountsTx
from repository_after.service_layer.ports import AccountsReader, AccountsTx

T = TypeVar("T")

# Statements at module level (see sql_accounts).
_ADD_TO_BALANCE = "UPDATE accounts SET balance = balance + ? WHERE account_id = ?"
_BALANCE = "SELECT balance FROM accounts WHERE account_id = ?"
_FOR_UPDATE = " FOR UPDATE"


class _MysqlAccountsTx(SqlAccountsTx):
    def __init__(self, db: MysqlDatabase, conn: Conn, *, writing: bool) -> None:
        super().__init__(conn)  # type: ignore[arg-type]  # `_run` below is how it is used
        self._db = db
        self._my = conn
        self._writing = writing
        self._locked: set[str] = set()

    def _run(self, sql: str, params: Sequence[object] = ()) -> Cursor:
        cursor: Cursor = self._my.cursor()
        cursor.execute(translate(sql), tuple(params))  # type: ignore[attr-defined]
        return cursor

    def _guard(self, transaction_id: str) -> None:
        if self._writing and transaction_id not in self._locked:
            self._db.lock(self._my, transaction_id)
            self._locked.add(transaction_id)

    def _for_update(self) -> str:
        return _FOR_UPDATE if self._writing else ""

    def _add_to_balance(self, delta: int, account_id: str) -> Any:
        self._run(_ADD_TO_BALANCE, (delta, account_id))
        return self._one(_BALANCE, (account_id,))

    def _undo_savepoint(self, name: str, cause: BaseException) -> None:
        undo_to_savepoint(self._run, name, cause)


class MysqlAccountStore:
    def __init__(self, database_url: str) -> None:
        self._db = MysqlDatabase(database_url, component="accounts")

    async def transaction(self, fn: Callable[[AccountsTx], T]) -> T:
        db = self._db
        return await db.transaction(lambda conn: fn(_MysqlAccountsTx(db, conn, writing=True)))

    async def read(self, fn: Callable[[AccountsReader], T]) -> T:
        db = self._db
        return await db.transaction(
            lambda conn: fn(_MysqlAccountsTx(db, conn, writing=False)), writes=False
        )

    async def close(self) -> None:
        await self._db.close()
