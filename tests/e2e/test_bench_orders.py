"""The order bench's two systems against real services, and the audit it runs on their books.

sagabank (`orders`, one `--role all` process) and python-cqrs (`cqrs_order`, needs the `bench`
extra) run the same seeded orders; every order must end, the books must audit clean, and the
audit itself must see money moved outside any order. No timing is asserted."""

from __future__ import annotations

import math
from pathlib import Path

import httpx
import pytest

from repository_after.entrypoints.service_process import ServiceProcess
from sagabank_tools.bench.cqrs_order import cqrs_orders
from sagabank_tools.bench.measure import LoadFigures
from sagabank_tools.bench.order_books import audit, open_stock
from sagabank_tools.bench.orders import sagabank_orders
from sagabank_tools.bench.plan import ORDER_BALANCE, order_plan
from sagabank_tools.bench.scenarios import server_env

pytestmark = pytest.mark.e2e

N = 30


def assert_ran(figures: dict[str, float], n: int) -> None:
    for key in vars(LoadFigures(0, 0, 0, 0, 0)):
        assert math.isfinite(figures[key]), key
        assert figures[key] > 0, key
    assert figures["p50_ms"] <= figures["p99_ms"]
    assert figures["completed"] + figures["compensated"] == n
    assert figures["audit_violations"] == 0
    assert figures["log_entries_per_saga"] > 0


def test_both_systems_end_every_planned_order_alike_with_clean_books() -> None:
    """The same plan and the same seeded faults: the k-th payment fails on either side, so both
    end with the same counts; 30 % faults leave some orders compensated."""
    ours = sagabank_orders(n=N, concurrency=4, seed=1)
    theirs = cqrs_orders(n=N, concurrency=4, seed=1)

    assert_ran(ours, N)
    assert_ran(theirs, N)
    assert theirs["log_commits_per_saga"] > 0
    assert ours["compensated"] > 0
    assert (ours["completed"], ours["compensated"]) == (theirs["completed"], theirs["compensated"])


async def test_the_audit_reads_clean_books_and_sees_money_moved_outside_an_order(
    tmp_path: Path,
) -> None:
    env = {
        **server_env(seed=3),
        "SAGABANK_DATABASE_URL": f"sqlite:///{tmp_path / 'bank.db'}",
        "SAGABANK_DEMO_BALANCE": str(ORDER_BALANCE),
    }
    with ServiceProcess(env=env, role="all") as server:
        await open_stock(server.url)
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            plan = order_plan(5, seed=3)
            for i, order in enumerate(plan):
                started = await client.post(
                    "/sagas/order", json=order.body(), headers={"transaction-id": f"audited-{i}"}
                )
                assert started.status_code == 200, started.text
            order_ids = [order.order_id for order in plan]
            clean = await audit(server.url, order_ids)
            stray = await client.post(
                "/debit",
                json={"account_id": "acc-01", "amount": 700},
                headers={"transaction-id": "stray-1"},
            )
            assert stray.status_code == 200, stray.text
            dirty = await audit(server.url, order_ids)

    assert clean == []
    assert any("stray-1" in v for v in dirty), dirty
