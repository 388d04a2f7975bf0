"""Two replicas of `sagabank serve --mode choreography` on ONE PostgreSQL database and one broker
topology, as a PostgreSQL deployment scales out: both consume every service's queue (competing
consumers), both run relays claiming the shared outbox with `SKIP LOCKED`, both run a tracker
over the shared saga log. Every publication is made twice by seeded fault (same message id), so
copies of one message reach both replicas at once: the inbox's advisory lock and primary key
must make each apply once. Transfers are posted to both replicas; then the books are read with
SQL: money conserved, every saga at rest, each ledger entry's saga in the state that explains
it, the audit clean on both replicas."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from repository_after.domain.saga import TERMINAL
from repository_after.entrypoints.service_process import ServiceProcess
from tests.choreography_support import delete_topology
from tests.rabbit import require_rabbitmq

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

TRANSFERS = 40


def _env(database_url: str, prefix: str) -> dict[str, str]:
    return {
        "SAGABANK_MODE": "choreography",
        "SAGABANK_DATABASE_URL": database_url,
        "SAGABANK_INVENTORY_DATABASE_URL": "",
        "SAGABANK_ORDERS_DATABASE_URL": "",
        "SAGABANK_BROKER_PREFIX": prefix,
        "SAGABANK_ACCOUNTS_URL": "",
        "SAGABANK_SERVICES": "{}",
        "SAGABANK_ADMIN_TOKEN": "",
        "SAGABANK_READ_TOKEN": "",
        "SAGABANK_SERVICE_TOKEN": "",
        "SAGABANK_PARTICIPANT_FAULTS": "{}",
        "SAGABANK_CREDIT_FAILURE_RATE": "0",
        "SAGABANK_DEMO_ACCOUNTS": "4",
        "SAGABANK_TRANSFER_WAIT": "0",
        "SAGABANK_MESSAGING_FAULTS": json.dumps({"seed": 7, "duplicate_rate": 1.0}),
    }


def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]  # the test's own SQL


async def _run(urls: list[str], ids: list[str], accounts: list[str]) -> dict[str, str]:
    async with httpx.AsyncClient(timeout=30) as client:
        posts = [
            client.post(
                f"{urls[i % 2]}/transfers",
                headers={"transaction-id": saga_id},
                json={
                    "source": accounts[i % len(accounts)],
                    "target": accounts[(i + 1) % len(accounts)],
                    "amount": 1_000 + 37 * i,
                },
            )
            for i, saga_id in enumerate(ids)
        ]
        for answer in await asyncio.gather(*posts):
            assert answer.status_code in (200, 202), answer.text
        statuses: dict[str, str] = {}
        deadline = time.monotonic() + 90
        while len(statuses) < len(ids):
            assert time.monotonic() < deadline, f"not at rest: {set(ids) - set(statuses)}"
            for i, saga_id in enumerate(ids):
                if saga_id not in statuses:
                    view = (await client.get(f"{urls[(i + 1) % 2]}/transfers/{saga_id}")).json()
                    if view["status"] in TERMINAL:
                        statuses[saga_id] = view["status"]
            await asyncio.sleep(0.1)  # polling the replicas' answers, not standing in for one
        for url in urls:
            audit = (await client.get(f"{url}/audit")).json()
            assert audit["ok"], audit
        return statuses


def test_two_replicas_on_one_postgresql_database_apply_every_copy_once(
    tmp_path: Path, postgres_url: str
) -> None:
    require_rabbitmq()
    prefix = f"sagabank-e2e-{uuid.uuid4().hex[:8]}"
    env = _env(postgres_url, prefix)
    try:
        first = ServiceProcess(env=env, role="all", log_path=tmp_path / "a.log")
        second = ServiceProcess(env=env, role="all", log_path=tmp_path / "b.log")
        with first, second:
            accounts = [a for (a,) in _rows(postgres_url, "SELECT account_id FROM accounts")]
            ((before,),) = _rows(postgres_url, "SELECT SUM(balance) FROM accounts")
            ids = [f"rep-{uuid.uuid4().hex[:10]}" for _ in range(TRANSFERS)]
            statuses = asyncio.run(_run([first.url, second.url], ids, accounts))
    finally:
        asyncio.run(delete_topology(prefix))
    logs = [(tmp_path / name).read_text() for name in ("a.log", "b.log")]
    # Both replicas published (and so duplicated) messages: copies met on both sides.
    assert all("chaos: duplicate publication" in log for log in logs)
    ((after,),) = _rows(postgres_url, "SELECT SUM(balance) FROM accounts")
    assert after == before
    assert set(statuses.values()) <= {"completed", "rejected", "compensated"}
    assert "completed" in statuses.values()
    by_saga: dict[str, Counter[str]] = {}
    for operation, transaction_id in _rows(
        postgres_url, "SELECT operation, transaction_id FROM ledger_entries"
    ):
        by_saga.setdefault(transaction_id, Counter())[operation] += 1
    expected = {
        "completed": Counter({"debit": 1, "credit": 1}),
        "rejected": Counter(),
        "compensated": Counter({"debit": 1, "compensate_debit": 1}),
    }
    for saga_id, status in statuses.items():
        # each entry once: a copy applied twice would show as a count of 2
        assert by_saga.get(saga_id, Counter()) == expected[status], (saga_id, status)
    assert set(by_saga) <= set(statuses)
    assert _rows(postgres_url, "SELECT COUNT(*) FROM outbox WHERE published_at IS NULL") == [(0,)]
