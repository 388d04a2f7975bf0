"""Part of the composition root (`bootstrap`): which adapter backs which database URL.

The backend is chosen by the URL alone (`sqlite:///path` by default, `postgresql://…`,
`mysql://…` or `mariadb://…`, `memory://` for tests); the account store and the saga log share
the URL but not their tables. The PostgreSQL and MariaDB / MySQL adapters are imported only when
asked for (the `postgres` and `mysql` extras are optional). A module of its own because this is
the one decision a new storage backend changes, and the CLI, the library and the bench ask it
without the rest of the composition; `bootstrap` re-exports it.
"""

from __future__ import annotations

from repository_after.adapters.memory_accounts import InMemoryAccountStore
from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.adapters.sqlite_accounts import SqliteAccountStore
from repository_after.adapters.sqlite_db import sqlite_path
from repository_after.adapters.sqlite_saga_log import SqliteSagaLog
from repository_after.service_layer.ports import AccountStore
from repository_after.service_layer.saga_ports import SagaLog


def is_postgres(database_url: str) -> bool:
    return database_url.startswith(("postgresql://", "postgres://"))


def is_mysql(database_url: str) -> bool:
    return database_url.startswith(("mysql://", "mariadb://"))


def build_account_store(database_url: str) -> AccountStore:
    if database_url.startswith("memory://"):
        return InMemoryAccountStore()
    if is_postgres(database_url):
        from repository_after.adapters.postgres_accounts import PostgresAccountStore

        return PostgresAccountStore(database_url)
    if is_mysql(database_url):
        from repository_after.adapters.mysql_accounts import MysqlAccountStore

        return MysqlAccountStore(database_url)
    return SqliteAccountStore(sqlite_path(database_url))


def build_saga_log(database_url: str, *, next_to: AccountStore | None = None) -> SagaLog:
    """`next_to`: the account store of this process; on SQLite the log shares its file's one
    connection and writer thread (no lock waits between the two, one fsync per batch)."""
    if database_url.startswith("memory://"):
        return InMemorySagaLog()
    if is_postgres(database_url):
        from repository_after.adapters.postgres_saga_log import PostgresSagaLog

        return PostgresSagaLog(database_url)
    if is_mysql(database_url):
        from repository_after.adapters.mysql_saga_log import MysqlSagaLog

        return MysqlSagaLog(database_url)
    share = next_to.database if isinstance(next_to, SqliteAccountStore) else None
    return SqliteSagaLog(sqlite_path(database_url), share=share)
