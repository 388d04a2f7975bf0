"""`sagabank demo --mode choreography` and `sagabank demo --saga order --mode choreography` as
real processes against the local RabbitMQ: one `sagabank serve --mode choreography` child, its
sagas started and watched over HTTP, every book checked. Then the databases themselves are read,
apart from what the demo printed: money (and stock) conserved, every saga at rest, the run's
topology deleted from the broker."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from repository_after.domain.saga import TERMINAL
from tests.e2e.test_demo_resume import demo_env
from tests.rabbit import ctl, require_rabbitmq

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def choreo_demo(data: Path, *extra: str) -> dict[str, Any]:
    require_rabbitmq()
    args = [sys.executable, "-m", "repository_after.entrypoints.cli", "demo", "--mode"]
    args += ["choreography", "--data-dir", str(data), "--seed", "3", "--json", *extra]
    done = subprocess.run(
        args, env=demo_env(), capture_output=True, text=True, timeout=150, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


def _topology_gone(prefix: str) -> None:
    listed = ctl("list_queues", "-p", "/", "name") + ctl("list_exchanges", "-p", "/", "name")
    assert not [line for line in listed.splitlines() if line.startswith(prefix + ".")]


def test_the_transfer_demo_runs_choreographed_and_conserves_money(tmp_path: Path) -> None:
    result = choreo_demo(tmp_path, "--transfers", "16")
    assert result["ok"]
    assert result["conserved"]
    assert result["audit_ok"]
    assert sum(result["outcomes"].values()) == 16
    db = Path(result["data"]) / "sagabank.db"
    statuses = [s for (s,) in rows(db, "SELECT status FROM sagas")]
    assert len(statuses) == 16
    assert set(statuses) <= TERMINAL
    ((opened, balance),) = rows(db, "SELECT SUM(opening_balance), SUM(balance) FROM accounts")
    assert opened == balance == result["total_before"]
    published = rows(db, "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")
    assert published == [(0,)]
    _topology_gone(result["broker_prefix"])


def test_the_order_demo_runs_choreographed_and_conserves_money_and_stock(
    tmp_path: Path,
) -> None:
    result = choreo_demo(tmp_path, "--saga", "order", "--orders", "12")
    assert result["ok"]
    assert result["account_audit"]["ok"]
    assert result["order_audit"]["ok"]
    assert result["unsettled"] == 0
    assert sum(result["outcomes"].values()) == 12
    data = Path(result["data"])
    stock = rows(
        data / "sagabank-inventory.db", "SELECT opened, available, reserved, sold FROM stock"
    )
    assert stock
    assert all(
        reserved == 0 and available + sold == opened for opened, available, reserved, sold in stock
    )
    statuses = [s for (s,) in rows(data / "sagabank.db", "SELECT status FROM sagas")]
    assert len(statuses) == 12
    assert set(statuses) <= TERMINAL
    _topology_gone(result["broker_prefix"])
