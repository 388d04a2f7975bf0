"""What only the MariaDB stores have: connections of their own threads, replaced when the server
closes them, and driver errors that reach the caller as `StorageError` only."""

from __future__ import annotations

import asyncio

import pymysql
import pytest

from repository_after.bootstrap import build_account_store, build_saga_log
from repository_after.service_layer.ports import StorageError
from tests.mariadb import plain_connect_args


def _kill_sessions_of(url: str) -> int:
    """End, server-side, every session using this database (as `wait_timeout` or a server
    restart would); returns how many."""
    conn = pymysql.connect(**plain_connect_args(url))
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM information_schema.processlist"
                " WHERE db = DATABASE() AND id <> CONNECTION_ID()"
            )
            ids = [int(i) for (i,) in cursor.fetchall()]
            for session in ids:
                cursor.execute(f"KILL CONNECTION {session}")
        return len(ids)
    finally:
        conn.close()


async def test_connections_the_server_closed_between_transactions_are_replaced(
    mysql_url: str,
) -> None:
    store = build_account_store(mysql_url)
    log = build_saga_log(mysql_url)
    try:
        await store.transaction(lambda tx: tx.insert_account("a", 100))
        await asyncio.gather(*(store.read(lambda r: r.get_account("a")) for _ in range(10)))
        await log.unsettled_ids()
        assert await asyncio.to_thread(_kill_sessions_of, mysql_url) >= 2
        found = await asyncio.gather(*(store.read(lambda r: r.get_account("a")) for _ in range(10)))
        assert {account.balance for account in found if account is not None} == {100}
        assert len(found) == 10
        assert await log.unsettled_ids() == []
    finally:
        await log.close()
        await store.close()


def test_an_unreachable_server_is_a_storage_error(mysql_url: str) -> None:
    nowhere = "mysql://root@127.0.0.1:1/" + mysql_url.rsplit("/", 1)[1]
    with pytest.raises(StorageError, match=r"^mysql: "):
        build_account_store(nowhere)
