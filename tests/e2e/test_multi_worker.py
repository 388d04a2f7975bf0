"""Several orchestrator workers (real `--role orchestrator` processes) share one PostgreSQL saga
log; one account service (credit faults on) on the same database.

- Under load, with duplicates of the same transfer sent to both workers, one worker is SIGKILLed:
  the other takes its sagas over once their leases expire. Every saga ends terminal, money is
  conserved, nothing is applied twice, each outcome matches the account service's records, and
  no two attempts of one saga ever overlap in time (two workers never ran a step concurrently).
- A worker is SIGSTOPped mid-saga past its lease ttl; the other takes over and finishes; when the
  "zombie" is resumed its writes are refused (LeaseLost in its log) and it adds no event.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from repository_after.domain.saga import AT_REST, TERMINAL
from repository_after.entrypoints.service_process import ServiceProcess
from tests.e2e.conftest import Launcher

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

WORKER_ENV = {
    "retry_attempts": 3,
    "retry_initial_backoff": 0.05,
    "retry_max_backoff": 0.2,
    "settle_attempts": 30,
    "lease_ttl": 2,
    "claim_interval": 0.2,
    "log_level": "INFO",
}


def start_services(
    launch: Launcher, url: str, *, failure_rate: float, **worker_env: object
) -> tuple[ServiceProcess, list[ServiceProcess]]:
    accounts = launch(
        name="accounts",
        database_url=url,
        credit_failure_rate=failure_rate,
        credit_failure_mode="mixed",
        fault_seed=5,
    )
    env = {**WORKER_ENV, **worker_env}
    workers = [
        launch(
            role="orchestrator",
            name=f"w{i}",
            database_url=url,
            accounts_url=accounts.url,
            worker_id=f"w{i}",
            **env,
        )
        for i in (1, 2)
    ]
    return accounts, workers


def transfer(i: int) -> dict[str, object]:
    return {
        "source": f"acc-{i % 10 + 1:02d}",
        "target": f"acc-{(i + 3) % 10 + 1:02d}",
        "amount": 7 + i,
    }


async def submit(calls: list[tuple[str, str, dict[str, object]]], on_answer=None) -> list[str]:
    """POST each (worker url, id, body) concurrently; returns the ids whose request died."""
    died: list[str] = []
    async with httpx.AsyncClient(timeout=30) as client:

        async def one(url: str, tx_id: str, body: dict[str, object]) -> None:
            try:
                r = await client.post(
                    f"{url}/transfers", json=body, headers={"transaction-id": tx_id}
                )
                assert r.status_code in (200, 202), r.text
                if on_answer is not None:
                    on_answer()
            except httpx.TransportError:
                died.append(tx_id)

        await asyncio.gather(*(one(*c) for c in calls))
    return died


def wait_terminal(url: str, ids: list[str], seconds: float) -> dict[str, str]:
    deadline, statuses = time.monotonic() + seconds, {}
    with httpx.Client(base_url=url, timeout=10) as client:
        while time.monotonic() < deadline:
            for tx_id in ids:
                if statuses.get(tx_id) not in TERMINAL:
                    statuses[tx_id] = client.get(f"/transfers/{tx_id}").json()["status"]
            if all(s in TERMINAL for s in statuses.values()):
                return statuses
            time.sleep(0.2)  # polling a remote state, not standing in for a synchronisation
    raise AssertionError(f"unsettled after {seconds}s: {statuses}")


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


def assert_books_match(db: str, accounts_url: str, statuses: dict[str, str], total: int) -> None:
    assert httpx.get(f"{accounts_url}/audit").json()["violations"] == []
    assert httpx.get(f"{accounts_url}/accounts").json()["total"] == total
    ops = {
        (op, tx): st
        for op, tx, st in query(db, "SELECT operation, transaction_id, status FROM operations")
    }
    for tx_id, status in statuses.items():
        debit, credit = ops.get(("debit", tx_id)), ops.get(("credit", tx_id))
        compensation = ops.get(("compensate_debit", tx_id))
        if status == "completed":
            assert (debit, credit, compensation) == ("applied", "applied", None), tx_id
        elif status == "compensated":
            assert credit != "applied", tx_id
            assert (debit == "applied") == (compensation == "compensated"), tx_id
        else:
            assert status == "rejected", tx_id
            assert (debit in (None, "rejected"), credit) == (True, None), tx_id


def assert_attempts_never_overlap(db: str) -> int:
    """Per saga, every logged attempt ends before the next begins; returns the attempts seen."""
    by_saga: dict[str, list[tuple[str, str]]] = {}
    for saga_id, data in query(db, "SELECT saga_id, data FROM saga_events ORDER BY saga_id, seq"):
        event = json.loads(str(data))
        if event["kind"] == "attempt":
            by_saga.setdefault(str(saga_id), []).append((event["started_at"], event["at"]))
    for saga_id, spans in by_saga.items():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert end <= start, f"saga {saga_id}: overlapping attempts {spans}"
    return sum(len(s) for s in by_saga.values())


def test_one_of_two_workers_sigkilled_under_load_loses_nothing(
    postgres_url: str, launch: Launcher, tmp_path: Path
) -> None:
    accounts, (w1, w2) = start_services(launch, postgres_url, failure_rate=0.3)
    total = httpx.get(f"{accounts.url}/accounts").json()["total"]
    bodies = {f"mw-{i:03d}": transfer(i) for i in range(60)}
    calls = [((w1, w2)[i % 2].url, tx, b) for i, (tx, b) in enumerate(bodies.items())]
    calls += [
        ((w2, w1)[i % 2].url, tx, b) for i, (tx, b) in enumerate(bodies.items()) if i % 3 == 0
    ]
    answered = 0

    def kill_w1_after_ten() -> None:
        nonlocal answered
        answered += 1
        if answered == 10:
            w1.kill()

    died = asyncio.run(submit(calls, kill_w1_after_ten))
    assert w1.proc is not None
    assert w1.proc.returncode == -signal.SIGKILL
    while died:  # the client re-sends every request that died, same id, to the live worker
        died = asyncio.run(submit([(w2.url, tx, bodies[tx]) for tx in set(died)]))

    statuses = wait_terminal(w2.url, list(bodies), 120)
    assert set(statuses.values()) <= {"completed", "compensated", "rejected"}
    assert_books_match(postgres_url, accounts.url, statuses, total)
    assert assert_attempts_never_overlap(postgres_url) >= len(bodies)
    taken = (tmp_path / "w2.log").read_text().count("saga(s) with free or expired leases")
    assert taken > 0, "w2 never claimed a saga from the killed worker: the test proved nothing"


def test_a_paused_worker_is_fenced_out_after_another_takes_over(
    postgres_url: str, launch: Launcher, tmp_path: Path
) -> None:
    accounts, (w1, w2) = start_services(
        launch,
        postgres_url,
        failure_rate=0.6,
        retry_initial_backoff=0.3,
        retry_max_backoff=0.6,
        transfer_wait=0,
    )
    total = httpx.get(f"{accounts.url}/accounts").json()["total"]
    bodies = {f"zz-{i:02d}": transfer(i) for i in range(12)}
    assert asyncio.run(submit([(w1.url, tx, b) for tx, b in bodies.items()])) == []
    assert w1.proc is not None
    os.kill(w1.proc.pid, signal.SIGSTOP)
    try:
        settled = ", ".join(f"'{s.value}'" for s in AT_REST)
        held = query(
            postgres_url,
            f"SELECT count(*) FROM sagas WHERE owner = 'w1' AND status NOT IN ({settled})",
        )
        assert held[0][0] > 0, "w1 was not mid-saga when paused: the test proved nothing"
        statuses = wait_terminal(w2.url, list(bodies), 120)  # w2 takes over after the ttl
        events_before = query(postgres_url, "SELECT count(*) FROM saga_events")[0][0]
    finally:
        os.kill(w1.proc.pid, signal.SIGCONT)
    log = tmp_path / "w1.log"
    deadline = time.monotonic() + 30
    while "LeaseLost" not in log.read_text():
        assert time.monotonic() < deadline, "the resumed zombie never noticed it lost its leases"
        time.sleep(0.1)  # polling a remote process's log, not standing in for a synchronisation
    assert httpx.get(f"{w1.url}/health").status_code == 200  # the zombie is alive and serving
    assert query(postgres_url, "SELECT count(*) FROM saga_events")[0][0] == events_before
    assert_books_match(postgres_url, accounts.url, statuses, total)
    assert assert_attempts_never_overlap(postgres_url) >= len(bodies)
