"""MariaDB (or MySQL) for the tests: a fresh, uniquely named database per use, dropped afterwards.

The server is the one on 127.0.0.1:3306 (user root, no password: `scripts/ensure-mariadb.sh`), or
`SAGABANK_TEST_MYSQL_URL`. When it is unreachable the MariaDB tests are skipped locally but FAIL
when the `CI` environment variable is set (as `tests/pg.py` does for PostgreSQL).
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

ADMIN_URL = os.environ.get("SAGABANK_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/")


def plain_connect_args(url: str) -> dict[str, Any]:
    """PyMySQL's arguments for `mysql://user:password@host:port/database`, parsed here and not
    by the product (`adapters.mysql_db`): the tests that check the product read with their own."""
    parts = urlsplit(url)
    return {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 3306,
        "user": unquote(parts.username or "root"),
        "password": unquote(parts.password or ""),
        "database": parts.path.lstrip("/") or None,
        "charset": "utf8mb4",
        "autocommit": True,
        "connect_timeout": 3,
    }


def _admin_connection() -> Any:
    import pymysql

    return pymysql.connect(**(plain_connect_args(ADMIN_URL) | {"database": None}))


@functools.cache
def _unreachable() -> str | None:
    try:
        _admin_connection().close()
    except Exception as exc:  # ImportError (no extra) or any connection failure
        return f"{type(exc).__name__}: {exc}"
    return None


def require_mariadb() -> None:
    reason = _unreachable()
    if reason is None:
        return
    message = f"MariaDB at {ADMIN_URL} is unreachable ({reason})"
    if os.environ.get("CI"):
        pytest.fail(message + "; CI is set, so this is a failure, not a skip")
    pytest.skip(message)


def _admin(sql: str) -> None:
    conn = _admin_connection()
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
    finally:
        conn.close()


@contextmanager
def fresh_database() -> Iterator[str]:
    """Yield the URL of a new empty database `sagabank_test_<hex>`; drop it afterwards."""
    require_mariadb()
    name = f"sagabank_test_{uuid.uuid4().hex}"
    _admin(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin")
    try:
        base = ADMIN_URL.split("://", 1)[1].split("/", 1)[0]
        yield f"mysql://{base}/{name}"
    finally:
        _admin(f"DROP DATABASE IF EXISTS `{name}`")
