"""`sagabank demo --saga order` as a real process: three services started on loopback, orders
run with 30 % injected faults on the payment and the inventory, every book checked.

Run twice on one data dir (the second run starts new orders on the same books), then the
databases themselves are read, apart from anything the demo printed: money and stock conserved,
every unit sold bought by a confirmed order, every cent the merchants hold paid by one, nothing
left reserved or pending. A book tampered with after that makes a third run exit 1.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from repository_after.domain.saga import TERMINAL
from repository_after.entrypoints.order_plan import CUSTOMERS, MERCHANTS
from tests.e2e.test_demo_resume import demo_env

pytestmark = pytest.mark.e2e

ORDERS = 20
OPENED = sum(CUSTOMERS.values()) + sum(MERCHANTS.values())


def order_demo(
    data_dir: Path, *extra: str, orders: int = ORDERS
) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "repository_after.entrypoints.cli", "demo", "--saga", "order"]
    args += ["--data-dir", str(data_dir), "--orders", str(orders), "--seed", "5", *extra]
    return subprocess.run(
        args, env=demo_env(), capture_output=True, text=True, timeout=240, check=False
    )


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(db)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


def test_two_runs_check_out_on_one_data_dir_and_a_tampered_book_fails_the_third(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    first = order_demo(data)
    printed = first.stdout.splitlines()
    assert "account audit: ok" in printed, first.stdout[-4000:]
    assert "order audit: ok" in printed
    assert "unsettled sagas: 0" in printed
    assert "result: ok" in printed
    assert first.returncode == 0, first.stderr[-2000:]

    second = order_demo(data, "--json")
    assert second.returncode == 0, second.stdout[-4000:] + second.stderr[-2000:]
    result = json.loads(second.stdout)
    assert result["account_audit"] == {"ok": True, "violations": []}
    assert result["order_audit"] == {"ok": True, "violations": []}
    assert (result["unsettled"], result["ok"]) == (0, True)
    assert sum(result["outcomes"].values()) == ORDERS
    assert result["outcomes"]["confirmed"] > 0
    assert (
        result["faults_injected"]["credit"]["before"] + result["faults_injected"]["credit"]["after"]
        > 0
    )
    reserve = result["faults_injected"]["inventory reserve"]
    assert reserve["before"] + reserve["after"] > 0
    assert result["money_before"]["total"] == result["money_after"]["total"] == OPENED

    # The databases, read directly: both runs' orders, none of them pending.
    orders = rows(
        data / "demo-order-orders.db", "SELECT order_id, merchant, total, state FROM orders"
    )
    assert len(orders) == 2 * ORDERS
    assert {state for *_, state in orders} <= {"confirmed", "cancelled"}
    sagas = rows(data / "demo-order-sagas.db", "SELECT status FROM sagas")
    assert len(sagas) == 2 * ORDERS
    assert {status for (status,) in sagas} <= {s.value for s in TERMINAL}
    # Stock: conserved, nothing held, and every unit sold was bought by a confirmed order.
    bought: Counter[str] = Counter()
    for sku, qty in rows(
        data / "demo-order-orders.db",
        "SELECT l.sku, l.qty FROM order_lines l JOIN orders o ON o.order_id = l.order_id"
        " WHERE o.state = 'confirmed'",
    ):
        bought[str(sku)] += int(qty)
    stock = rows(
        data / "demo-order-inventory.db", "SELECT sku, opened, available, reserved, sold FROM stock"
    )
    for sku, opened, available, reserved, sold in stock:
        assert (available + reserved + sold, reserved, sold) == (opened, 0, bought[sku]), sku
    # Money: conserved, and the merchants (opened with nothing) hold what confirmed orders paid.
    books = data / "demo-order.db"
    [(total, opening)] = rows(books, "SELECT SUM(balance), SUM(opening_balance) FROM accounts")
    assert total == opening == OPENED
    paid = sum(int(t) for _, _, t, state in orders if state == "confirmed")
    merchants = ",".join(f"'{m}'" for m in MERCHANTS)
    [(held,)] = rows(books, f"SELECT SUM(balance) FROM accounts WHERE account_id IN ({merchants})")
    assert held == paid > 0

    # A book tampered with between two runs: the next run names it and exits 1.
    assert "sku 'apple': available" not in first.stdout + second.stdout
    conn = sqlite3.connect(data / "demo-order-inventory.db")
    with conn:
        conn.execute("UPDATE stock SET available = available + 1 WHERE sku = 'apple'")
    conn.close()
    tampered = order_demo(data, orders=5)
    assert tampered.returncode == 1, tampered.stdout[-3000:]
    assert "sku 'apple': available" in tampered.stdout
    assert "result: VIOLATIONS (exit status 1)" in tampered.stdout.splitlines()
