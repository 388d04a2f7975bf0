"""Reduced choreography chaos runs: every broker fault family, real processes, a real RabbitMQ.

Three seeds of transfers and three of orders (orders -> inventory -> payment) choreographed over
a private RabbitMQ node (so the run may SIGKILL and restart it; the shared broker is never
touched) through the TCP proxy that cuts connections, with the service SIGKILLed, crash points
between commit and ack and between publish and mark, duplicate publications, poison messages,
and the services' own faults (the account service's `/credit`, the inventory's `reserve`)
failing deliveries. The report must be clean, every family must have fired (or the run proved
nothing), and the books are read again here with plain SQL (`tests/chaos/books.py`,
`order_books.py`: money, and for orders the stock and every order), so a tool whose checks
always came back clean could not pass.

One more seed of transfers runs with every store of the service in one fresh PostgreSQL
database (`--database-url`): the same families, the books read back from that database, and no
SQLite file in the run's folder (nothing of the run stayed on SQLite).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from sagabank_tools.chaos.choreo_runner import ChoreoConfig, run
from sagabank_tools.chaos.choreo_schedule import CHOREOGRAPHY_FAMILIES, SAGA_FAMILIES
from sagabank_tools.chaos.rabbit_node import PrivateNode
from tests.chaos import books, order_books
from tests.rabbit import require_private_node

pytestmark = [pytest.mark.chaos, pytest.mark.timeout(300)]
TRANSFERS = 20
ORDERS = 30
PG_TRANSFERS = 40


@pytest.fixture(scope="module")
def node() -> Iterator[PrivateNode]:
    require_private_node()
    started = PrivateNode().start()
    try:
        yield started
    finally:
        started.remove()


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_choreography_chaos_run_with_every_broker_fault_conserves_money(
    seed: int, tmp_path: Path, node: PrivateNode
) -> None:
    restarts = node.restarts
    report = await run(
        ChoreoConfig(seed=seed, sagas=TRANSFERS, workdir=tmp_path, node=node, settle_timeout=90)
    )

    assert report.violations == [], report.replay_command()
    assert sum(report.outcomes.values()) == TRANSFERS
    assert report.money_after == report.money_before
    unfired = [f.value for f in CHOREOGRAPHY_FAMILIES if report.faults.get(f.value, 0) == 0]
    assert unfired == [], report.faults
    assert node.restarts > restarts, "the broker was never restarted"
    assert report.faults["connections-cut"] > 0, "no connection was open when cut"
    assert report.parked_then_retried >= 1, "no poisoned saga was parked and redriven"
    assert report.strangers_refused
    database = f"sqlite:///{tmp_path / 'sagabank.db'}"
    assert books.problems(accounts_url=database, sagas_url=database, transfers=TRANSFERS) == []


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_choreographed_order_chaos_run_keeps_money_stock_and_orders(
    seed: int, tmp_path: Path, node: PrivateNode
) -> None:
    restarts = node.restarts
    report = await run(
        ChoreoConfig(
            seed=seed, sagas=ORDERS, saga="order", workdir=tmp_path, node=node, settle_timeout=90
        )
    )

    assert report.violations == [], report.replay_command()
    assert sum(report.outcomes.values()) == ORDERS
    assert report.outcomes.get("completed", 0) > 0
    assert report.money_after == report.money_before
    unfired = [f.value for f in SAGA_FAMILIES["order"] if report.faults.get(f.value, 0) == 0]
    assert unfired == [], report.faults
    assert node.restarts > restarts, "the broker was never restarted"
    assert report.parked_then_retried >= 1, "no poisoned saga was parked and redriven"
    assert report.strangers_refused
    # The plan's refusals happened, something was sold, and nothing is left reserved.
    assert {"out_of_stock", "insufficient_funds"} <= report.refusals.keys(), report.refusals
    assert report.stock["sold"] > 0
    assert report.stock["reserved"] == 0
    found = order_books.problems(
        tmp_path, orders=ORDERS, accounts="sagabank.db", sagas="sagabank.db"
    )
    assert found == []


async def test_a_choreography_chaos_run_on_postgresql_keeps_every_store_there(
    tmp_path: Path, node: PrivateNode, postgres_url: str
) -> None:
    restarts = node.restarts
    report = await run(
        ChoreoConfig(
            seed=4,
            sagas=PG_TRANSFERS,
            workdir=tmp_path,
            node=node,
            settle_timeout=90,
            database_url=postgres_url,
        )
    )

    assert report.backend == "postgresql"
    assert report.violations == [], report.replay_command()
    assert "--database-url <an empty postgresql database>" in report.replay_command()
    assert sum(report.outcomes.values()) == PG_TRANSFERS
    assert report.money_after == report.money_before
    unfired = [f.value for f in CHOREOGRAPHY_FAMILIES if report.faults.get(f.value, 0) == 0]
    assert unfired == [], report.faults
    assert node.restarts > restarts, "the broker was never restarted"
    assert report.parked_then_retried >= 1, "no poisoned saga was parked and redriven"
    # Every store in the one database: the books and the log read back from it, the messages
    # went through its outbox and inbox, and no SQLite file was made.
    assert (
        books.problems(accounts_url=postgres_url, sagas_url=postgres_url, transfers=PG_TRANSFERS)
        == []
    )
    with psycopg.connect(postgres_url) as pg:
        published = pg.execute("SELECT COUNT(*) FROM outbox WHERE published_at IS NOT NULL")
        handled = pg.execute("SELECT COUNT(*) FROM inbox")
        assert (published.fetchone() or (0,))[0] >= PG_TRANSFERS
        assert (handled.fetchone() or (0,))[0] >= PG_TRANSFERS
    assert sorted(p.name for p in tmp_path.glob("*.db*")) == []
