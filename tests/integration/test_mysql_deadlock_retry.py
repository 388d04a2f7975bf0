"""A deadlock inside a handler's savepoint on MariaDB is retried, as `mysql_transactions` promises.

InnoDB answers a deadlock (1213) by rolling back the WHOLE transaction, savepoints included, so
the kit's `ROLLBACK TO SAVEPOINT` (a refusal's undo) then fails with 1305 "SAVEPOINT does not
exist". That second error must not replace the deadlock: `MysqlDatabase` retries on the
deadlock's code, and would otherwise answer 503 for a race a second run resolves.

The deadlock is made for real: another session holds many rows and then waits for the row the
handler holds; the handler then asks for one of the other's rows. InnoDB picks the transaction
that changed fewer rows as its victim: the handler's (found, not assumed: the test asserts it).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pymysql
import pytest
from pydantic import BaseModel, ConfigDict

from repository_after.participant_kit import ParticipantService, Tx
from repository_after.participant_kit.mysql import MysqlParticipantStore
from tests import mariadb

SCHEMA = ("CREATE TABLE IF NOT EXISTS cells (id INTEGER PRIMARY KEY, v INTEGER NOT NULL)",)
ROWS = 200


class BumpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    n: int


@pytest.fixture
def url() -> Iterator[str]:
    with mariadb.fresh_database() as database:
        yield database


def _other_session(url: str) -> Any:
    return pymysql.connect(**(mariadb.plain_connect_args(url) | {"autocommit": False}))


def _waiting(admin: Any, thread_id: int) -> bool:
    """Whether the other session is blocked in its UPDATE: its statement still runs (it would
    end at once otherwise). `innodb_trx` alone misses it: an UPDATE by primary key waits while
    it is being optimised (processlist state `Statistics`), not listed as `LOCK WAIT`."""
    with admin.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM information_schema.processlist"
            " WHERE id = %s AND command = 'Query' AND info LIKE 'UPDATE%%'",
            (thread_id,),
        )
        return bool(cursor.fetchone()[0])


async def test_a_deadlocked_handler_is_run_again_not_answered_503(url: str) -> None:
    store = MysqlParticipantStore(url, schema=SCHEMA)
    await store.transaction(
        lambda tx: [
            tx.execute("INSERT INTO cells (id, v) VALUES (?, 0)", (i,)) for i in range(ROWS)
        ]
    )
    other = _other_session(url)
    admin = _other_session(url)
    admin.autocommit(True)
    with other.cursor() as cursor:  # the heavier transaction: InnoDB keeps it, kills ours
        cursor.execute("START TRANSACTION")
        cursor.execute("UPDATE cells SET v = v + 100 WHERE id >= 1")
    errors: list[BaseException] = []
    runs: list[str] = []

    def other_takes_row_0() -> None:
        try:
            with other.cursor() as cursor:
                cursor.execute("UPDATE cells SET v = v + 100 WHERE id = 0")
            other.commit()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    waiter = threading.Thread(target=other_takes_row_0)

    def bump(tx: Tx, _key: str, _body: dict[str, Any]) -> dict[str, Any]:
        tx.execute("UPDATE cells SET v = v + 1 WHERE id = 0")
        if not runs:
            runs.append("first")
            waiter.start()
            deadline = time.monotonic() + 4
            while not _waiting(admin, other.thread_id()):
                assert time.monotonic() < deadline, "the other session never waited"
            try:
                tx.execute("UPDATE cells SET v = v + 1 WHERE id = 1")  # deadlock: we are its victim
            except pymysql.Error as exc:
                runs.append(f"first run failed with {exc.args[0]}")
                raise
        else:
            runs.append("again")
            tx.execute("UPDATE cells SET v = v + 1 WHERE id = 1")
        return {"status": "bumped"}

    service = ParticipantService("cells", store)
    service.action("bump", BumpIn, bump)
    try:
        answer = await service.perform("bump", "k-1", BumpIn(n=1))
        waiter.join(10)
    finally:
        other.close()
        admin.close()
        await store.close()
    assert not errors, errors
    assert runs[:2] == ["first", "first run failed with 1213"], runs  # a real deadlock, ours
    assert answer.status_code == 200, answer.body  # retried once: applied, not 503
    assert runs[2:] == ["again"]
    check = MysqlParticipantStore(url, schema=SCHEMA)
    try:
        values = await check.read(lambda tx: tx.execute("SELECT id, v FROM cells WHERE id < 2"))
    finally:
        await check.close()
    assert sorted((int(i), int(v)) for i, v in values) == [(0, 101), (1, 101)]


async def test_the_account_store_retries_a_deadlock_inside_a_savepoint(url: str) -> None:
    from repository_after.adapters.mysql_accounts import MysqlAccountStore

    store = MysqlAccountStore(url)
    await store.transaction(lambda tx: [tx.insert_account(f"a{i:03}", 1000) for i in range(ROWS)])
    other = _other_session(url)
    admin = _other_session(url)
    admin.autocommit(True)
    with other.cursor() as cursor:
        cursor.execute("START TRANSACTION")
        cursor.execute("UPDATE accounts SET balance = balance + 1 WHERE account_id >= 'a001'")
    errors: list[BaseException] = []
    runs: list[str] = []

    def other_takes_a000() -> None:
        try:
            with other.cursor() as cursor:
                cursor.execute(
                    "UPDATE accounts SET balance = balance + 1 WHERE account_id = %s", ("a000",)
                )
            other.commit()
        except BaseException as exc:  # reported by the assertion below
            errors.append(exc)

    waiter = threading.Thread(target=other_takes_a000)

    def both(tx: Any) -> int:
        with tx.savepoint():
            first = tx.get_account("a000")  # FOR UPDATE in a write transaction
            if not runs:
                runs.append("first")
                waiter.start()
                deadline = time.monotonic() + 4
                while not _waiting(admin, other.thread_id()):
                    assert time.monotonic() < deadline, "the other session never waited"
                try:
                    tx.get_account("a001")  # deadlock: we are its victim
                except pymysql.Error as exc:
                    runs.append(f"first run failed with {exc.args[0]}")
                    raise
            else:
                runs.append("again")
            second = tx.get_account("a001")
            return int(first.balance + second.balance)

    try:
        total = await store.transaction(both)
        waiter.join(10)
    finally:
        other.close()
        admin.close()
        await store.close()
    assert not errors, errors
    assert runs == ["first", "first run failed with 1213", "again"], runs
    assert total == 2002  # both rows as the other session committed them
