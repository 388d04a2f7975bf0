"""The SQL saga log's stored form and its SQLite scheduling, below what the contract suites see.

The rows are the durable format: files and databases written by this version are read by the
next one, and by operators with plain SQL. `version` is the number of a saga's events and the
events are numbered 1..version in `seq`, the order `load` replays them in; a gap or an
off-by-one there would go unnoticed by `load` (it only orders by `seq`) until some reader relied
on the numbering.

SQLite runs every plan as a job of `SqliteDatabase` (group commit) and the log says per
operation whether the job writes (BEGIN IMMEDIATE: a write waits for another connection's lock
instead of failing on a stale snapshot) and whether it runs on the event loop's thread (short
writes and reads by key) or on the writer thread (scans): the table below is that design, as
`sqlite_saga_log`'s docstring states it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psycopg
import pymysql
import pytest

from repository_after.adapters.sql_saga_reads import marks
from repository_after.adapters.sqlite_accounts import SqliteAccountStore
from repository_after.adapters.sqlite_db import SqliteDatabase
from repository_after.adapters.sqlite_saga_log import SqliteSagaLog
from repository_after.bootstrap import build_saga_log
from repository_after.domain.saga import EventKind, SagaEvent
from repository_after.domain.transfer import TRANSFER
from repository_after.service_layer.saga_ports import Lease, SagaLog
from tests.mariadb import plain_connect_args

START = SagaEvent(EventKind.STARTED, at="2026-01-01T00:00:00+00:00")
NOTE = SagaEvent(EventKind.OPERATOR_RETRY, at="2026-01-01T00:00:01+00:00", note="x")

Query = Callable[[str], list[tuple[Any, ...]]]


@pytest.fixture(params=["sqlite", "postgres", "mysql"])
async def log_and_query(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[SagaLog, Query]]:
    """A SQL saga log and a way to read its tables on a connection of our own."""
    if request.param == "sqlite":
        path = tmp_path / "sagas.db"

        def query_sqlite(sql: str) -> list[tuple[Any, ...]]:
            conn = sqlite3.connect(path)
            try:
                return conn.execute(sql).fetchall()
            finally:
                conn.close()

        log: SagaLog = SqliteSagaLog(path)
        yield log, query_sqlite
    elif request.param == "mysql":
        my_url = request.getfixturevalue("mysql_url")

        def query_mysql(sql: str) -> list[tuple[Any, ...]]:
            conn = pymysql.connect(**plain_connect_args(my_url))
            try:
                with conn.cursor() as cursor:
                    cursor.execute(sql)
                    return list(cursor.fetchall())
            finally:
                conn.close()

        log = build_saga_log(my_url)
        yield log, query_mysql
    else:
        url = request.getfixturevalue("postgres_url")

        def query_postgres(sql: str) -> list[tuple[Any, ...]]:
            with psycopg.connect(url) as conn:
                return conn.execute(sql.encode()).fetchall()

        log = build_saga_log(url)
        yield log, query_postgres
    await log.close()


async def test_events_are_numbered_one_to_version_without_gaps(log_and_query) -> None:
    log, query = log_and_query
    await log.create(
        saga_id="s1",
        definition="transfer",
        definition_version=1,
        definition_hash=TRANSFER.shape_hash(),
        params={},
        events=[START, NOTE],
    )
    await log.append("s1", [NOTE], status="debiting")
    await log.append("s1", [NOTE, NOTE], status="crediting")
    await log.create(
        saga_id="s2",
        definition="transfer",
        definition_version=1,
        definition_hash=TRANSFER.shape_hash(),
        params={},
        events=[START],
    )
    assert query("SELECT saga_id, seq FROM saga_events ORDER BY saga_id, seq") == [
        ("s1", 1),
        ("s1", 2),
        ("s1", 3),
        ("s1", 4),
        ("s1", 5),
        ("s2", 1),
    ]
    assert query("SELECT saga_id, version FROM sagas ORDER BY saga_id") == [("s1", 5), ("s2", 1)]


# operation -> (writes, on_loop), as `sqlite_saga_log`'s docstring gives them.
SCHEDULE = {
    "create": (True, True),
    "append": (True, True),
    "acquire": (True, True),
    "release": (True, True),
    "claim": (True, False),
    "renew": (True, False),
    "purge_settled": (True, False),
    "load": (False, True),
    "summary": (False, True),
    "list_recent": (False, False),
    "unsettled_ids": (False, False),
    "count_by_status": (False, False),
    "count_by_definition": (False, False),
    "oldest_unsettled": (False, False),
    "definitions_in_use": (False, False),
}


async def test_each_sqlite_operation_runs_as_the_job_its_design_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jobs: list[tuple[bool, bool]] = []
    write, read = SqliteDatabase.write, SqliteDatabase.read

    async def spy_write(self: SqliteDatabase, fn: Any, *, on_loop: bool = False) -> Any:
        jobs.append((True, bool(on_loop)))
        return await write(self, fn, on_loop=on_loop)

    async def spy_read(self: SqliteDatabase, fn: Any, *, on_loop: bool = False) -> Any:
        jobs.append((False, bool(on_loop)))
        return await read(self, fn, on_loop=on_loop)

    monkeypatch.setattr(SqliteDatabase, "write", spy_write)
    monkeypatch.setattr(SqliteDatabase, "read", spy_read)
    log = SqliteSagaLog(tmp_path / "sagas.db")
    seen: dict[str, list[tuple[bool, bool]]] = {}

    async def record(name: str, call: Any) -> Any:
        jobs.clear()
        result = await call
        seen[name] = list(jobs)
        return result

    try:
        lease = await record(
            "create",
            log.create(
                saga_id="s1",
                definition="transfer",
                definition_version=1,
                definition_hash=TRANSFER.shape_hash(),
                params={},
                events=[START],
                ttl=60,
            ),
        )
        assert lease == Lease("s1", "", 1)
        await record("append", log.append("s1", [NOTE], status="debiting", lease=lease))
        await record("renew", log.renew([lease], ttl=60))
        await record("release", log.release([lease]))
        taken = await record("acquire", log.acquire("s1", "b", ttl=0))
        assert taken is not None
        await record("claim", log.claim("c", limit=10, ttl=60))
        await record("load", log.load("s1"))
        await record("summary", log.summary("s1"))
        await record("list_recent", log.list_recent(limit=10))
        await record("unsettled_ids", log.unsettled_ids())
        await record("count_by_status", log.count_by_status())
        await record("count_by_definition", log.count_by_definition())
        await record("oldest_unsettled", log.oldest_unsettled())
        await record("definitions_in_use", log.definitions_in_use())
        await record("purge_settled", log.purge_settled(before="2000-01-01"))
    finally:
        await log.close()
    assert seen == {name: [flags] for name, flags in SCHEDULE.items()}


async def test_a_sqlite_log_next_to_the_account_store_shares_its_database(tmp_path: Path) -> None:
    """In one process on one SQLite file the log uses the account store's connection and writer
    thread (one group commit, no waits on the file lock); its own tables are created on it."""
    path = tmp_path / "bank.db"
    store = SqliteAccountStore(path)
    log = build_saga_log(f"sqlite:///{path}", next_to=store)
    try:
        assert isinstance(log, SqliteSagaLog)
        assert log.database is store.database
        await log.create(
            saga_id="s1",
            definition="transfer",
            definition_version=1,
            definition_hash=TRANSFER.shape_hash(),
            params={},
            events=[START],
        )
        stored = await log.load("s1")
        assert stored is not None
        assert stored.events == (START,)
    finally:
        await log.close()
        await store.close()


def test_an_in_list_binds_one_placeholder_per_value() -> None:
    assert marks(("a", "b", "c")) == "?, ?, ?"
    assert marks(("a",)) == "?"


async def test_closing_a_postgres_log_hands_its_connections_back(postgres_url: str) -> None:
    """`close` closes the pool: a worker that stops leaves no session behind on the server."""

    def sessions() -> int:
        with psycopg.connect(postgres_url) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
            assert row is not None
            return int(row[0])

    log = build_saga_log(postgres_url)
    await log.create(
        saga_id="s1",
        definition="transfer",
        definition_version=1,
        definition_hash=TRANSFER.shape_hash(),
        params={},
        events=[START],
    )
    assert sessions() >= 1
    await log.close()
    deadline = time.monotonic() + 10.0  # a backend exits just after its client hangs up
    while (left := sessions()) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert left == 0
