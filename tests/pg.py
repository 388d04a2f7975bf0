"""PostgreSQL for the tests: a fresh, uniquely named database per use, dropped afterwards.

The server is the one on 127.0.0.1:5432 (user postgres, trust auth), or
`SAGABANK_TEST_POSTGRES_URL`. When it is unreachable the PostgreSQL tests are skipped locally but
FAIL when the `CI` environment variable is set: CI must never pass without running them. (The
guard in tests/conftest.py would fail the skip under CI anyway; failing here says why first.)
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

ADMIN_URL = os.environ.get(
    "SAGABANK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@functools.cache
def _unreachable() -> str | None:
    try:
        import psycopg

        psycopg.connect(ADMIN_URL, connect_timeout=3).close()
    except Exception as exc:  # ImportError (no extra) or any connection failure
        return f"{type(exc).__name__}: {exc}"
    return None


def require_postgres() -> None:
    reason = _unreachable()
    if reason is None:
        return
    message = f"PostgreSQL at {ADMIN_URL} is unreachable ({reason})"
    if os.environ.get("CI"):
        pytest.fail(message + "; CI is set, so this is a failure, not a skip")
    pytest.skip(message)


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@contextmanager
def fresh_database() -> Iterator[str]:
    """Yield the URL of a new empty database `sagabank_test_<hex>`; drop it afterwards."""
    require_postgres()
    name = f"sagabank_test_{uuid.uuid4().hex}"
    _admin(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
