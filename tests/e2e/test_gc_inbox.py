"""`sagabank gc` purges choreography's inboxes, on the files a real choreographed run left.

`sagabank demo --saga order --mode choreography` runs against the local RabbitMQ and leaves its
SQLite files: the account database's inbox (consumer `accounts`) and the inventory's and the
orders service's (their own files). Half of each inbox is aged past the retention period, then
`sagabank gc` runs on them as the operator runs it: the aged rows go, the others stay, and each
consumer's cutoff is recorded (`inbox_retention`), so an older copy is refused from then on. A
retention below the retry horizon is refused before anything is touched."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_choreography_demo import choreo_demo
from tests.e2e.test_gc_cli import sagabank

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

OLD = "2000-01-01T00:00:00.000000+00:00"


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return list(conn.execute(sql))


def _age_half(db: Path) -> tuple[int, int]:
    """Age every other inbox row; (aged, kept)."""
    with sqlite3.connect(db) as conn:
        ids = [key for (key,) in conn.execute("SELECT rowid FROM inbox ORDER BY rowid")]
        aged = ids[::2]
        conn.executemany(
            "UPDATE inbox SET received_at = ? WHERE rowid = ?", [(OLD, i) for i in aged]
        )
    return len(aged), len(ids) - len(aged)


def test_gc_purges_each_inbox_past_the_retention_and_records_its_cutoff(tmp_path: Path) -> None:
    result = choreo_demo(tmp_path, "--saga", "order", "--orders", "6")
    data = Path(result["data"])
    files = {
        "accounts": data / "sagabank.db",
        "inventory": data / "sagabank-inventory.db",
        "orders": data / "sagabank-orders.db",
    }
    counts = {consumer: _age_half(db) for consumer, db in files.items()}
    assert all(aged > 0 and kept > 0 for aged, kept in counts.values()), counts
    env = {
        "SAGABANK_DATABASE_URL": f"sqlite:///{files['accounts']}",
        "SAGABANK_INVENTORY_DATABASE_URL": "",
        "SAGABANK_ORDERS_DATABASE_URL": "",
        "SAGABANK_RETENTION_DAYS": "30",
    }

    refused = sagabank(env, "gc", "--retention-days", "0.001")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert _rows(files["accounts"], "SELECT COUNT(*) FROM inbox") == [(sum(counts["accounts"]),)]

    done = sagabank(env, "gc")
    assert done.returncode == 0, done.stdout + done.stderr
    for consumer, db in files.items():
        aged, kept = counts[consumer]
        assert f"{consumer}: purged {aged} inbox row(s) of {consumer}" in done.stdout, done.stdout
        left = _rows(db, f"SELECT COUNT(*) FROM inbox WHERE received_at = '{OLD}'")
        assert left == [(0,)]
        assert _rows(db, "SELECT COUNT(*) FROM inbox") == [(kept,)]
        ((purged_before, purged),) = _rows(
            db, f"SELECT purged_before, purged FROM inbox_retention WHERE consumer = '{consumer}'"
        )
        assert purged == aged
        assert purged_before > OLD
