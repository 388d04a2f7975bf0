"""Choreography on PostgreSQL, as real processes against the local RabbitMQ: `sagabank demo
--mode choreography --database-url postgresql://…` (one `sagabank serve --mode choreography`
child keeping the accounts, the saga log, the inventory and the orders service in ONE fresh
database), then the database itself is read: money and stock conserved, every saga at rest,
every outbox row published, each consumer's inbox holding what it applied; then `sagabank gc`
purges those inboxes once (the database is shared, so one pass) and records each cutoff."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from repository_after.domain.saga import TERMINAL
from tests.e2e.test_choreography_demo import choreo_demo
from tests.e2e.test_gc_cli import sagabank

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

OLD = "2000-01-01T00:00:00.000000+00:00"


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql)  # type: ignore[arg-type]  # the tests' own literal SQL
        return cursor.fetchall() if cursor.description is not None else []


def test_transfers_and_orders_run_choreographed_on_postgresql(
    tmp_path: Any, postgres_url: str
) -> None:
    transfers = choreo_demo(tmp_path, "--transfers", "12", "--database-url", postgres_url)
    assert transfers["ok"]
    assert transfers["conserved"]
    assert transfers["audit_ok"]
    orders = choreo_demo(
        tmp_path, "--saga", "order", "--orders", "8", "--database-url", postgres_url
    )
    assert orders["ok"]
    assert orders["order_audit"]["ok"]
    assert orders["unsettled"] == 0

    statuses = [s for (s,) in rows(postgres_url, "SELECT status FROM sagas")]
    assert len(statuses) == 12 + 8
    assert set(statuses) <= TERMINAL
    ((opened, balance),) = rows(
        postgres_url, "SELECT SUM(opening_balance), SUM(balance) FROM accounts"
    )
    assert opened == balance
    stock = rows(postgres_url, "SELECT opened, available, reserved, sold FROM stock")
    assert stock
    assert all(r == 0 and a + s == o for o, a, r, s in stock)
    assert rows(postgres_url, "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL") == [(0,)]
    consumers = dict(rows(postgres_url, "SELECT consumer, COUNT(*) FROM inbox GROUP BY 1"))
    assert set(consumers) == {"accounts", "inventory", "orders"}, consumers

    # `sagabank gc` on that database: every other inbox row aged past the retention period.
    rows(
        postgres_url,
        f"UPDATE inbox SET received_at = '{OLD}' WHERE ctid IN"
        " (SELECT ctid FROM (SELECT ctid, row_number() OVER (ORDER BY consumer, message_id) AS n"
        " FROM inbox) numbered WHERE n % 2 = 1)",
    )
    aged = dict(
        rows(
            postgres_url,
            f"SELECT consumer, COUNT(*) FROM inbox WHERE received_at = '{OLD}' GROUP BY 1",
        )
    )
    assert set(aged) == set(consumers)
    env = {
        "SAGABANK_DATABASE_URL": postgres_url,
        "SAGABANK_INVENTORY_DATABASE_URL": "",
        "SAGABANK_ORDERS_DATABASE_URL": "",
        "SAGABANK_RETENTION_DAYS": "30",
    }
    done = sagabank(env, "gc")
    assert done.returncode == 0, done.stdout + done.stderr
    for consumer, count in aged.items():
        # Purged once, from the first store on the shared database (the account service's).
        assert done.stdout.count(f"inbox row(s) of {consumer} ") == 1, done.stdout
        assert f"accounts: purged {count} inbox row(s) of {consumer}" in done.stdout, done.stdout
    assert rows(postgres_url, f"SELECT COUNT(*) FROM inbox WHERE received_at = '{OLD}'") == [(0,)]
    left = dict(rows(postgres_url, "SELECT consumer, COUNT(*) FROM inbox GROUP BY 1"))
    assert left == {c: consumers[c] - aged[c] for c in consumers}
    fences = dict(rows(postgres_url, "SELECT consumer, purged FROM inbox_retention"))
    assert fences == aged
