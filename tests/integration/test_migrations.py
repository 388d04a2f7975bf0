"""Schema versioning: old SQLite files migrate forward; concurrent start-ups migrate once."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from repository_after.adapters import migrations
from repository_after.adapters.migrations import latest
from repository_after.adapters.sqlite_accounts import SqliteAccountStore
from repository_after.adapters.sqlite_saga_log import SqliteSagaLog
from repository_after.bootstrap import build_account_store, build_saga_log
from repository_after.domain.saga import EventKind, SagaEvent

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
