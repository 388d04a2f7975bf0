"""Group commit in the SQLite adapter: concurrent writes share one COMMIT, yet each behaves as
its own transaction (a raising write undoes only itself) and is on disk when it returns."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from repository_after.adapters.sqlite_db import SqliteDatabase
from repository_after.domain.transfer import TRANSFER
from repository_after.service_layer.ports import StorageError


@pytest.fixture
async def db(tmp_path: Path):  # type: ignore[no-untyped-def]
    database = SqliteDatabase(tmp_path / "g.db", component="sagas")
    await database.write(lambda c: c.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)"))
    commits: list[str] = []
    database._conn.set_trace_callback(  # count the COMMITs the writer thread issues
        lambda sql: commits.append(sql) if sql == "COMMIT" else None
    )
    yield database, commits
    await database.close()


def insert(k: int):  # type: ignore[no-untyped-def]
    def work(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t VALUES (?, 'x')", (k,))
        return k

    return work


def insert_then_fail(k: int):  # type: ignore[no-untyped-def]
    def work(conn: sqlite3.Connection) -> int:
        conn.execute("INSERT INTO t VALUES (?, 'doomed')", (k,))
        raise ValueError(f"job {k} refuses")

    return work


def rows(path: Path) -> dict[int, str]:
    with sqlite3.connect(path) as other:  # another connection sees only what was committed
        return dict(other.execute("SELECT k, v FROM t"))


async def test_concurrent_writes_share_commits_and_all_land(db) -> None:
    database, commits = db
    results = await asyncio.gather(*(database.write(insert(k)) for k in range(200)))
    assert results == list(range(200))
    assert len(rows(database.path)) == 200
    assert 1 <= len(commits) < 200  # batched: fewer COMMITs (fsyncs) than writes


async def test_a_failing_write_undoes_only_itself(db) -> None:
    database, _ = db
    jobs = [insert(k) if k % 10 else insert_then_fail(k) for k in range(1, 60)]
    outcomes = await asyncio.gather(*(database.write(j) for j in jobs), return_exceptions=True)
    failed = [k for k, o in zip(range(1, 60), outcomes, strict=True) if isinstance(o, Exception)]
    assert failed == [10, 20, 30, 40, 50]
    assert all(isinstance(outcomes[k - 1], ValueError) for k in failed)
    stored = rows(database.path)
    assert sorted(stored) == [k for k in range(1, 60) if k % 10]
    assert "doomed" not in stored.values()


async def test_a_constraint_violation_is_a_storage_error_for_that_write_only(db) -> None:
    database, _ = db
    await database.write(insert(1))
    outcomes = await asyncio.gather(
        database.write(insert(2)),
        database.write(insert(1)),
        database.write(insert(3)),
        return_exceptions=True,
    )
    assert outcomes[0] == 2
    assert outcomes[2] == 3
    assert isinstance(outcomes[1], StorageError)
    assert sorted(rows(database.path)) == [1, 2, 3]


async def test_the_account_store_and_the_saga_log_share_one_writer_in_one_process(
    tmp_path: Path,
) -> None:
    from repository_after.bootstrap import build_account_store, build_saga_log
    from repository_after.domain.saga import EventKind, SagaEvent
    from repository_after.service_layer import accounts

    url = f"sqlite:///{tmp_path / 'bank.db'}"
    store = build_account_store(url)
    log = build_saga_log(url, next_to=store)
    database = store.database  # type: ignore[attr-defined]
    assert log._db is database  # type: ignore[attr-defined]
    commits: list[str] = []
    database._conn.set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)
    started = SagaEvent(EventKind.STARTED, at="2026-01-01T00:00:00+00:00")
    await asyncio.gather(
        *(
            log.create(
                saga_id=f"s{i}",
                definition="transfer",
                definition_version=1,
                definition_hash=TRANSFER.shape_hash(),
                params={},
                events=[started],
            )
            for i in range(20)
        ),
        *(
            store.transaction(
                lambda tx, i=i: accounts.open_account(tx, account_id=f"a{i}", initial_balance=10)
            )
            for i in range(20)
        ),
    )
    assert len(commits) < 40  # both components' writes ride the same group commits
    await log.close()  # the store still uses the connection
    assert len(await store.read(lambda r: r.list_accounts())) == 20
    await store.close()
    with pytest.raises(sqlite3.ProgrammingError):  # the last user closed it
        database._conn.execute("SELECT 1")
    with sqlite3.connect(tmp_path / "bank.db") as other:
        assert other.execute("SELECT COUNT(*) FROM sagas").fetchone() == (20,)


async def test_reads_ride_the_batches_and_see_only_committed_or_same_batch_writes(db) -> None:
    database, commits = db
    await database.write(insert(1))

    def count(conn: sqlite3.Connection) -> int:
        return int(conn.execute("SELECT COUNT(*) FROM t").fetchone()[0])

    results = await asyncio.gather(
        database.write(insert(2)), database.read(count), database.write(insert(3))
    )
    assert results[0] == 2
    assert results[2] == 3
    assert results[1] in (1, 2, 3)  # a snapshot: before, between or after the other writes
    assert await database.read(count) == 3
    reads_alone = len(commits)
    await asyncio.gather(*(database.read(count) for _ in range(50)))
    assert len(commits) - reads_alone < 50  # reads are batched too


async def test_short_jobs_run_on_the_event_loop_thread_and_commit_on_the_writer(
    tmp_path: Path,
) -> None:
    database = SqliteDatabase(tmp_path / "s.db", component="sagas")
    await database.write(lambda c: c.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)"))
    where: list[tuple[str, int]] = []
    database._conn.set_trace_callback(lambda sql: where.append((sql, threading.get_ident())))
    loop_thread = threading.get_ident()
    await asyncio.gather(*(database.write(insert(k), on_loop=True) for k in range(1, 20)))
    inserts = {ident for sql, ident in where if sql.startswith("INSERT")}
    commits = {ident for sql, ident in where if sql == "COMMIT"}
    assert inserts == {loop_thread}  # no thread hand-over per statement
    assert commits
    assert loop_thread not in commits  # the fsync never blocks the event loop
    where.clear()
    await database.write(insert(50))  # not short: the whole job on the writer thread
    assert loop_thread not in {ident for _, ident in where}
    assert len(rows(database.path)) == 20
    await database.close()


async def test_account_operations_run_on_the_event_loop_thread_and_reads_on_the_writer(
    tmp_path: Path,
) -> None:
    """The account store's use cases touch a few rows by key: short jobs (`on_loop`), their
    statements on the event loop's thread; its reads (listings, the audit) may scan, so they run
    on the writer thread and never hold up the event loop."""
    from repository_after.adapters.sqlite_accounts import SqliteAccountStore

    store = SqliteAccountStore(tmp_path / "a.db")
    loop_thread = threading.get_ident()
    assert await store.transaction(lambda tx: threading.get_ident()) == loop_thread
    assert await store.read(lambda r: threading.get_ident()) != loop_thread
    await store.close()


async def test_a_short_job_that_meets_another_connections_lock_waits_on_the_writer(
    tmp_path: Path,
) -> None:
    database = SqliteDatabase(tmp_path / "l.db", component="sagas")
    await database.write(lambda c: c.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)"))
    statements: list[str] = []
    database._conn.set_trace_callback(statements.append)
    other = sqlite3.connect(tmp_path / "l.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's writer holds the lock
    other.execute("INSERT INTO t VALUES (100, 'other')")
    write = asyncio.ensure_future(database.write(insert(1), on_loop=True))
    deadline = asyncio.get_running_loop().time() + 10
    while f"PRAGMA busy_timeout = {10_000}" not in statements:  # handed to the writer thread
        assert asyncio.get_running_loop().time() < deadline, statements
        await asyncio.sleep(0.01)
    assert not write.done()  # waiting for the lock, not failed
    other.execute("COMMIT")
    assert await write == 1
    assert rows(tmp_path / "l.db") == {1: "x", 100: "other"}
    other.close()
    await database.close()
