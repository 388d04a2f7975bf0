"""Schema versioning: old SQLite files migrate forward; concurrent start-ups migrate once (SQLite,
PostgreSQL, MariaDB); a MariaDB step a crash cut short is finished by the next start."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path

from repository_after.adapters import migrations
from repository_after.adapters.migrations import latest
from repository_after.adapters.sqlite_accounts import SqliteAccountStore
from repository_after.adapters.sqlite_saga_log import SqliteSagaLog
from repository_after.bootstrap import build_account_store, build_saga_log, saga_types
from repository_after.domain.accounts import Operation
from repository_after.domain.saga import EventKind, SagaEvent
from repository_after.domain.transfer import TRANSFER
from repository_after.service_layer.saga_ports import SagaLog
from repository_after.service_layer.saga_types import check_log_versions

# The schema sagabank wrote before versioning existed ("version 0"), verbatim.
VERSION_0 = """
CREATE TABLE sagas (saga_id TEXT PRIMARY KEY, definition TEXT NOT NULL, params TEXT NOT NULL,
    status TEXT NOT NULL, version INTEGER NOT NULL, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL);
CREATE INDEX sagas_by_status ON sagas (status, created_at);
CREATE TABLE saga_events (saga_id TEXT NOT NULL REFERENCES sagas (saga_id), seq INTEGER NOT NULL,
    data TEXT NOT NULL, PRIMARY KEY (saga_id, seq)) WITHOUT ROWID;
CREATE TABLE accounts (account_id TEXT PRIMARY KEY,
    opening_balance INTEGER NOT NULL CHECK (opening_balance >= 0),
    balance INTEGER NOT NULL CHECK (balance >= 0), created_at TEXT NOT NULL);
INSERT INTO sagas VALUES ('old-1', 'transfer', '{"amount": 5}', 'debiting', 1, '2025', '2025');
INSERT INTO saga_events VALUES ('old-1', 1, '{"kind": "started", "at": "2025"}');
INSERT INTO accounts VALUES ('acc-old', 70, 70, '2025');
"""


def versions(db: Path) -> dict[str, list[int]]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT component, version FROM schema_migrations ORDER BY component, version"
        ).fetchall()
    finally:
        conn.close()
    found: dict[str, list[int]] = {}
    for component, version in rows:
        found.setdefault(component, []).append(version)
    return found


async def test_a_version_0_sqlite_file_migrates_forward_and_keeps_its_data(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    sqlite3.connect(db).executescript(VERSION_0)
    log, store = SqliteSagaLog(db), SqliteAccountStore(db)
    try:
        stored = await log.load("old-1")
        assert stored is not None
        assert (stored.status, stored.params) == ("debiting", {"amount": 5})
        assert (stored.definition_version, stored.definition_hash) == (1, TRANSFER.shape_hash())
        (lease,) = await log.claim("w", limit=5, ttl=30)  # the new lease columns exist
        await log.append(
            "old-1", [SagaEvent(EventKind.OPERATOR_RETRY, at="x")], status="x", lease=lease
        )
        account = await store.read(lambda r: r.get_account("acc-old"))
        assert account is not None
        assert account.balance == 70
    finally:
        await log.close()
        await store.close()
    assert versions(db) == {
        "accounts": list(range(1, migrations.latest("accounts", "sqlite") + 1)),
        "sagas": list(range(1, migrations.latest("sagas", "sqlite") + 1)),
    }


async def test_reopening_an_up_to_date_file_applies_nothing(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    await SqliteSagaLog(db).close()
    before = versions(db)
    await SqliteSagaLog(db).close()
    assert versions(db) == before == {"sagas": [1, 2, 3]}


async def test_postgres_processes_starting_together_apply_each_step_once(postgres_url: str) -> None:
    stores = await asyncio.gather(
        *(asyncio.to_thread(build_account_store, postgres_url) for _ in range(4))
    )
    log = build_saga_log(postgres_url)
    assert await log.unsettled_ids() == []  # opens the pool, which migrates `sagas`
    await log.close()
    for store in stores:
        await store.close()
    import psycopg

    with psycopg.connect(postgres_url) as conn:
        rows = conn.execute(
            "SELECT component, version FROM schema_migrations ORDER BY component, version"
        ).fetchall()
    expected = [(c, v) for c in ("accounts", "sagas") for v in range(1, latest(c, "postgres") + 1)]
    assert rows == expected
    assert len(expected) >= 4


def _sagas_at_version_2(execute: Callable[[str], object], dialect: migrations.Dialect) -> None:
    """The `sagas` tables as sagabank left them before versioned definitions (steps 1 and 2),
    with two sagas in flight: a transfer, and one of a name no earlier sagabank ran."""
    execute(migrations.BOOKKEEPING)
    for version, step in enumerate(migrations.MIGRATIONS[("sagas", dialect)][:2], start=1):
        for sql in step:
            execute(sql)
        execute(f"INSERT INTO schema_migrations VALUES ('sagas', {version}, '2026')")
    for saga_id, name in (("old-1", "transfer"), ("old-2", "payout")):
        execute(
            "INSERT INTO sagas (saga_id, definition, params, status, version, created_at,"
            f" updated_at) VALUES ('{saga_id}', '{name}', '{{}}', 'debiting', 1, '2026', '2026')"
        )
        execute(
            "INSERT INTO saga_events (saga_id, seq, data)"
            f' VALUES (\'{saga_id}\', 1, \'{{"kind": "started", "at": "2026"}}\')'
        )


DRIVABLE = saga_types().registered()


async def _assert_upgraded(log: SagaLog) -> None:
    """Transfers logged before the step read back as version 1 with the transfer's pinned hash
    (the server's own definition of it: they resume); any other name as no version at all,
    which no server registers: never claimed (its shape is never guessed), and reported by the
    start-up check as left to a server that registers it."""
    old = await log.load("old-1")
    other = await log.load("old-2")
    assert old is not None
    assert other is not None
    assert (old.definition_version, old.definition_hash) == (1, "c5a5f5add9f94254")
    assert old.definition_hash == TRANSFER.shape_hash()
    assert (old.status, old.events) == ("debiting", (SagaEvent(EventKind.STARTED, at="2026"),))
    assert (other.definition_version, other.definition_hash) == (0, "")
    (line,) = await check_log_versions(log, saga_types())
    assert line.startswith("saga type 'payout' version 0: 1 unfinished saga started under shape")
    assert [c.saga_id for c in await log.claim("w", limit=10, ttl=0, drivable=DRIVABLE)] == [
        "old-1"
    ]


async def test_a_sqlite_log_before_versioned_definitions_upgrades_its_sagas_to_version_1(
    tmp_path: Path,
) -> None:
    db = tmp_path / "v2.db"
    conn = sqlite3.connect(db)
    _sagas_at_version_2(conn.execute, "sqlite")
    conn.commit()
    conn.close()
    log = SqliteSagaLog(db)
    try:
        await _assert_upgraded(log)
    finally:
        await log.close()
    assert versions(db)["sagas"] == [1, 2, 3]


async def test_a_postgres_log_before_versioned_definitions_upgrades_its_sagas_to_version_1(
    postgres_url: str,
) -> None:
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        _sagas_at_version_2(conn.execute, "postgres")  # type: ignore[arg-type]
    log = build_saga_log(postgres_url)
    try:
        await _assert_upgraded(log)
    finally:
        await log.close()
    with psycopg.connect(postgres_url) as conn:
        defaults = conn.execute(
            "SELECT column_name, column_default FROM information_schema.columns"
            " WHERE table_name = 'sagas' AND column_name LIKE 'definition_%' ORDER BY 1"
        ).fetchall()
        applied = conn.execute(
            "SELECT version FROM schema_migrations WHERE component = 'sagas' ORDER BY 1"
        ).fetchall()
    # The step's defaults only filled the old rows: a new row must name its version and hash.
    assert defaults == [("definition_hash", None), ("definition_version", None)]
    assert applied == [(1,), (2,), (3,)]


def _mysql_rows(url: str, sql: str) -> list[tuple[object, ...]]:
    import pymysql

    from tests.mariadb import plain_connect_args

    conn = pymysql.connect(**plain_connect_args(url))
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
            return list(cursor.fetchall())
    finally:
        conn.close()


async def test_mariadb_processes_starting_together_apply_each_step_once(mysql_url: str) -> None:
    """Four account stores and two saga logs open at once on one empty database: the named lock
    lets one of them migrate each component, and each step is recorded once."""
    opened = await asyncio.gather(
        *(asyncio.to_thread(build_account_store, mysql_url) for _ in range(4)),
        *(asyncio.to_thread(build_saga_log, mysql_url) for _ in range(2)),
    )
    for component in opened:
        await component.close()
    rows = _mysql_rows(
        mysql_url, "SELECT component, version FROM schema_migrations ORDER BY component, version"
    )
    expected = [(c, v) for c in ("accounts", "sagas") for v in range(1, latest(c, "mysql") + 1)]
    assert rows == expected


async def test_a_mariadb_step_cut_short_by_a_crash_is_finished_by_the_next_start(
    mysql_url: str,
) -> None:
    """MySQL commits each DDL statement by itself, so a crash can leave a step half applied:
    its first table there, the rest and the bookkeeping row missing. The next start re-runs the
    whole step (every statement `IF NOT EXISTS`) and records it."""
    import pymysql

    from tests.mariadb import plain_connect_args

    conn = pymysql.connect(**plain_connect_args(mysql_url))
    try:
        with conn.cursor() as cursor:
            cursor.execute(migrations.MIGRATIONS[("accounts", "mysql")][0][0])
    finally:
        conn.close()
    store = build_account_store(mysql_url)
    try:
        await store.transaction(lambda tx: tx.insert_account("a", 10))
        balance = await store.transaction(
            lambda tx: tx.change_balance("a", -4, operation=Operation.DEBIT, transaction_id="t1")
        )
        assert balance == 6
    finally:
        await store.close()
    applied = _mysql_rows(mysql_url, "SELECT component, version FROM schema_migrations")
    assert applied == [("accounts", 1)]
