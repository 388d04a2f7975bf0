"""Numbered schema migrations per component (`accounts`, `sagas`) and SQL dialect.

`schema_migrations(component, version, applied_at)` records each applied step. At start-up
`pending` lists the steps a database lacks and the adapter runs them, with the bookkeeping rows,
in one transaction that holds the database's write lock (SQLite `BEGIN IMMEDIATE`, PostgreSQL an
advisory lock; MariaDB / MySQL a named lock, see `mysql_db`), so two processes starting
together apply each step once.

Invariants: steps are append-only (never edit a released one; add the next number); version 1 of
each SQLite component is the schema as it was before versioning, written with `IF NOT EXISTS`, so
a file created by an older sagabank ("version 0": tables, no bookkeeping) migrates forward.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Literal

Dialect = Literal["sqlite", "postgres", "mysql"]
Statements = tuple[str, ...]

BOOKKEEPING = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (component TEXT NOT NULL,"
    " version INTEGER NOT NULL, applied_at TEXT NOT NULL, PRIMARY KEY (component, version))"
)

_SQLITE_ACCOUNTS_V1: Statements = (
    "CREATE TABLE IF NOT EXISTS accounts (account_id TEXT PRIMARY KEY,"
    " opening_balance INTEGER NOT NULL CHECK (opening_balance >= 0),"
    " balance INTEGER NOT NULL CHECK (balance >= 0), created_at TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS operations (operation TEXT NOT NULL,"
    " transaction_id TEXT NOT NULL, account_id TEXT, amount INTEGER, status TEXT NOT NULL,"
    " applied INTEGER NOT NULL, status_code INTEGER NOT NULL, body TEXT NOT NULL,"
    " created_at TEXT NOT NULL, PRIMARY KEY (operation, transaction_id)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS ledger_entries (entry_id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " account_id TEXT NOT NULL REFERENCES accounts (account_id), transaction_id TEXT NOT NULL,"
    " operation TEXT NOT NULL, delta INTEGER NOT NULL, balance_after INTEGER NOT NULL,"
    " created_at TEXT NOT NULL, UNIQUE (operation, transaction_id))",
    "CREATE INDEX IF NOT EXISTS ledger_by_account ON ledger_entries (account_id, entry_id)",
)

_SQLITE_SAGAS_V1: Statements = (
    "CREATE TABLE IF NOT EXISTS sagas (saga_id TEXT PRIMARY KEY, definition TEXT NOT NULL,"
    " params TEXT NOT NULL, status TEXT NOT NULL, version INTEGER NOT NULL,"
    " created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS sagas_by_status ON sagas (status, created_at)",
    "CREATE TABLE IF NOT EXISTS saga_events (saga_id TEXT NOT NULL REFERENCES sagas (saga_id),"
    " seq INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (saga_id, seq)) WITHOUT ROWID",
)

# Leases: lease_until is seconds since the epoch (REAL) on SQLite, a timestamptz on PostgreSQL.
# Both are set and compared by the database's own clock (`sql_saga_log`); SQLite's used to be
# written from the process clock in the same unit, so no step was needed when that changed.
_SQLITE_SAGAS_V2: Statements = (
    "ALTER TABLE sagas ADD COLUMN owner TEXT",
    "ALTER TABLE sagas ADD COLUMN lease_until REAL",
    "ALTER TABLE sagas ADD COLUMN fence INTEGER NOT NULL DEFAULT 0",
)

# Retention (`sagabank gc`): records are purged by age; the counts purged are kept as totals.
_ACCOUNTS_V2: Statements = (
    "CREATE INDEX operations_by_age ON operations (created_at)",
    "CREATE TABLE retention_totals (component TEXT PRIMARY KEY, purged BIGINT NOT NULL,"
    " purged_applied BIGINT NOT NULL)",
)

_PG_ACCOUNTS_V1: Statements = (
    "CREATE TABLE accounts (account_id TEXT PRIMARY KEY,"
    " opening_balance BIGINT NOT NULL CHECK (opening_balance >= 0),"
    " balance BIGINT NOT NULL CHECK (balance >= 0), created_at TEXT NOT NULL)",
    "CREATE TABLE operations (operation TEXT NOT NULL, transaction_id TEXT NOT NULL,"
    " account_id TEXT, amount BIGINT, status TEXT NOT NULL, applied BOOLEAN NOT NULL,"
    " status_code INTEGER NOT NULL, body TEXT NOT NULL, created_at TEXT NOT NULL,"
    " PRIMARY KEY (operation, transaction_id))",
    "CREATE TABLE ledger_entries (entry_id BIGSERIAL PRIMARY KEY,"
    " account_id TEXT NOT NULL REFERENCES accounts (account_id),"
    " transaction_id TEXT NOT NULL, operation TEXT NOT NULL, delta BIGINT NOT NULL,"
    " balance_after BIGINT NOT NULL, created_at TEXT NOT NULL,"
    " UNIQUE (operation, transaction_id))",
    "CREATE INDEX ledger_by_account ON ledger_entries (account_id, entry_id)",
)

_PG_SAGAS_V1: Statements = (
    "CREATE TABLE sagas (saga_id TEXT PRIMARY KEY, definition TEXT NOT NULL,"
    " params TEXT NOT NULL, status TEXT NOT NULL, version INTEGER NOT NULL,"
    " created_at TEXT NOT NULL, updated_at TEXT NOT NULL)",
    "CREATE INDEX sagas_by_status ON sagas (status, created_at)",
    "CREATE TABLE saga_events (saga_id TEXT NOT NULL REFERENCES sagas (saga_id),"
    " seq INTEGER NOT NULL, data TEXT NOT NULL, PRIMARY KEY (saga_id, seq))",
)

_PG_SAGAS_V2: Statements = (
    "ALTER TABLE sagas ADD COLUMN owner TEXT",
    "ALTER TABLE sagas ADD COLUMN lease_until TIMESTAMPTZ",
    "ALTER TABLE sagas ADD COLUMN fence BIGINT NOT NULL DEFAULT 0",
)

# Versioned definitions: each saga names the version of its definition it started under and that
# definition's shape hash (`SagaDefinition.shape_hash`). Every saga logged before this step is a
# transfer of version 1, whose hash is pinned here as it was then (a test pins it in the domain
# too); a row of any other name keeps version 0 and no hash, which no registry defines, so the
# start-up check refuses it rather than guess its shape. The temporary defaults only fill the
# existing rows: every insert names both columns (PostgreSQL drops the defaults; SQLite cannot).
_TRANSFER_V1_HASH = "c5a5f5add9f94254"
_SAGAS_V3: Statements = (
    "ALTER TABLE sagas ADD COLUMN definition_version INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE sagas ADD COLUMN definition_hash TEXT NOT NULL DEFAULT ''",
    "UPDATE sagas SET definition_version = 1,"
    f" definition_hash = '{_TRANSFER_V1_HASH}' WHERE definition = 'transfer'",
)
_PG_SAGAS_V3: Statements = (
    *_SAGAS_V3,
    "ALTER TABLE sagas ALTER COLUMN definition_version DROP DEFAULT",
    "ALTER TABLE sagas ALTER COLUMN definition_hash DROP DEFAULT",
)

# MariaDB / MySQL (`mysql_db`): one step per component, today's schema. DDL commits implicitly
# there, so each statement may be re-run after a crash mid-step (IF NOT EXISTS). Keys are
# VARCHARs of bounded length (MySQL indexes no TEXT); the binary NO PAD collation keeps keys
# differing in case or trailing spaces apart; `lease_until` is DOUBLE epoch seconds by the
# server's clock (`UNIX_TIMESTAMP(NOW(6))`), as on SQLite; the CHECKs are enforced (MariaDB
# >= 10.2, MySQL >= 8.0.16). `sagas_by_age`: claims scan in age order (`mysql_saga_log` says why).
_MY = " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_nopad_bin"
MYSQL_BOOKKEEPING = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (component VARCHAR(64) NOT NULL,"
    " version INTEGER NOT NULL, applied_at VARCHAR(40) NOT NULL,"
    f" PRIMARY KEY (component, version)){_MY}"
)
_MYSQL_ACCOUNTS_V1: Statements = (
    "CREATE TABLE IF NOT EXISTS accounts (account_id VARCHAR(255) PRIMARY KEY,"
    " opening_balance BIGINT NOT NULL, balance BIGINT NOT NULL, created_at VARCHAR(40) NOT NULL,"
    " CONSTRAINT opening_balance_not_negative CHECK (opening_balance >= 0),"
    " CONSTRAINT balance_not_negative CHECK (balance >= 0))" + _MY,
    "CREATE TABLE IF NOT EXISTS operations (operation VARCHAR(64) NOT NULL,"
    " transaction_id VARCHAR(255) NOT NULL, account_id VARCHAR(255), amount BIGINT,"
    " status VARCHAR(64) NOT NULL, applied BOOLEAN NOT NULL, status_code INTEGER NOT NULL,"
    " body LONGTEXT NOT NULL, created_at VARCHAR(40) NOT NULL,"
    " PRIMARY KEY (operation, transaction_id), INDEX operations_by_age (created_at))" + _MY,
    "CREATE TABLE IF NOT EXISTS ledger_entries (entry_id BIGINT AUTO_INCREMENT PRIMARY KEY,"
    " account_id VARCHAR(255) NOT NULL, transaction_id VARCHAR(255) NOT NULL,"
    " operation VARCHAR(64) NOT NULL, delta BIGINT NOT NULL, balance_after BIGINT NOT NULL,"
    " created_at VARCHAR(40) NOT NULL, UNIQUE (operation, transaction_id),"
    " INDEX ledger_by_account (account_id, entry_id),"
    " FOREIGN KEY (account_id) REFERENCES accounts (account_id))" + _MY,
    "CREATE TABLE IF NOT EXISTS retention_totals (component VARCHAR(64) PRIMARY KEY,"
    " purged BIGINT NOT NULL, purged_applied BIGINT NOT NULL)" + _MY,
)
_MYSQL_SAGAS_V1: Statements = (
    "CREATE TABLE IF NOT EXISTS sagas (saga_id VARCHAR(255) PRIMARY KEY,"
    " definition VARCHAR(255) NOT NULL, definition_version INTEGER NOT NULL,"
    " definition_hash VARCHAR(64) NOT NULL, params LONGTEXT NOT NULL,"
    " status VARCHAR(64) NOT NULL, version INTEGER NOT NULL, created_at VARCHAR(40) NOT NULL,"
    " updated_at VARCHAR(40) NOT NULL, owner VARCHAR(255), lease_until DOUBLE,"
    " fence BIGINT NOT NULL DEFAULT 0, INDEX sagas_by_status (status, created_at),"
    " INDEX sagas_by_age (created_at))" + _MY,
    "CREATE TABLE IF NOT EXISTS saga_events (saga_id VARCHAR(255) NOT NULL,"
    " seq INTEGER NOT NULL, data LONGTEXT NOT NULL, PRIMARY KEY (saga_id, seq),"
    " FOREIGN KEY (saga_id) REFERENCES sagas (saga_id))" + _MY,
)

#: (component, dialect) -> steps; step i has version i + 1.
MIGRATIONS: dict[tuple[str, Dialect], tuple[Statements, ...]] = {
    ("accounts", "sqlite"): (_SQLITE_ACCOUNTS_V1, _ACCOUNTS_V2),
    ("sagas", "sqlite"): (_SQLITE_SAGAS_V1, _SQLITE_SAGAS_V2, _SAGAS_V3),
    ("accounts", "postgres"): (_PG_ACCOUNTS_V1, _ACCOUNTS_V2),
    ("sagas", "postgres"): (_PG_SAGAS_V1, _PG_SAGAS_V2, _PG_SAGAS_V3),
    ("accounts", "mysql"): (_MYSQL_ACCOUNTS_V1,),
    ("sagas", "mysql"): (_MYSQL_SAGAS_V1,),
}

#: Key of the PostgreSQL advisory lock that serialises migrations across processes.
PG_MIGRATION_LOCK = 0x5A6A_BA4C


def latest(component: str, dialect: Dialect) -> int:
    return len(MIGRATIONS[(component, dialect)])


def pending(component: str, dialect: Dialect, applied: set[int]) -> list[tuple[int, Statements]]:
    steps = MIGRATIONS[(component, dialect)]
    return [(i + 1, step) for i, step in enumerate(steps) if i + 1 not in applied]


def run(
    execute: Callable[[str, Sequence[object]], None],
    component: str,
    dialect: Dialect,
    applied: set[int],
    now: str,
) -> list[int]:
    """Apply the pending steps through `execute(sql, params)`; returns the versions applied.

    The caller owns the transaction (and the lock) around this call."""
    mark = "?" if dialect == "sqlite" else "%s"
    done = []
    for version, statements in pending(component, dialect, applied):
        for sql in statements:
            execute(sql, ())
        execute(
            "INSERT INTO schema_migrations (component, version, applied_at)"
            f" VALUES ({mark}, {mark}, {mark})",
            (component, version, now),
        )
        done.append(version)
    return done


def migrate_sqlite(conn: sqlite3.Connection, component: str) -> list[int]:
    """Bring `component` of this SQLite file up to date (autocommit connection expected)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(BOOKKEEPING)
        rows = conn.execute(
            "SELECT version FROM schema_migrations WHERE component = ?", (component,)
        )
        applied = {int(v) for (v,) in rows}
        done = run(
            lambda sql, params: conn.execute(sql, params).close(),
            component,
            "sqlite",
            applied,
            datetime.now(UTC).isoformat(timespec="microseconds"),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return done
