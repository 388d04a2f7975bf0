"""The orchestrator process is SIGKILLed mid-run, several times, and restarted.

Real processes on loopback: one account service (credit faults 30 %, mixed modes) and one
orchestrator (`--role orchestrator`, its own SQLite saga log). The client submits transfers with
its own transaction ids; at each kill point it SIGKILLs the orchestrator while requests are in
flight, restarts it (recovery runs at start-up), and re-submits every transfer whose request died,
with the same id, as a real client would. At the end every saga must be terminal, money
conserved, nothing applied twice, and each saga's outcome must match the account service's
records exactly.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from repository_after.domain.saga import TERMINAL
from repository_after.entrypoints.service_process import ServiceProcess
from tests.e2e.conftest import Launcher

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

TRANSFERS = 60
KILL_AFTER_RESPONSES = (4, 9, 15)  # responses seen in each round before the SIGKILL


def plan() -> list[tuple[str, dict[str, object]]]:
    return [
        (
            f"kill-{i:03d}",
            {
                "source": f"acc-{i % 10 + 1:02d}",
                "target": f"acc-{(i + 3) % 10 + 1:02d}",
                "amount": 100 + i,
            },
        )
        for i in range(TRANSFERS)
    ]


async def submit_round(
    url: str,
    batch: list[tuple[str, dict[str, object]]],
    kill_after: int,
    orchestrator: ServiceProcess,
) -> list[str]:
    """Submit `batch` concurrently; SIGKILL the orchestrator after `kill_after` answers.

    Returns the ids whose request did not get an answer (to be re-submitted)."""
    died: list[str] = []
    answered = 0
    async with httpx.AsyncClient(base_url=url, timeout=15) as client:

        async def one(tx_id: str, body: dict[str, object]) -> None:
            nonlocal answered
            try:
                r = await client.post("/transfers", json=body, headers={"transaction-id": tx_id})
                assert r.status_code in (200, 202), r.text
                answered += 1
                if answered == kill_after:
                    orchestrator.kill()
            except httpx.TransportError:
                died.append(tx_id)

        await asyncio.gather(*(one(t, b) for t, b in batch))
    return died


def settled_statuses(url: str, ids: list[str], deadline: float) -> dict[str, str]:
    statuses: dict[str, str] = {}
    with httpx.Client(base_url=url, timeout=10) as client:
        while time.monotonic() < deadline:
            for tx_id in ids:
                if statuses.get(tx_id) not in TERMINAL:
                    r = client.get(f"/transfers/{tx_id}")
                    assert r.status_code in (200, 202), r.text
                    statuses[tx_id] = r.json()["status"]
            if all(s in TERMINAL for s in statuses.values()):
                return statuses
            time.sleep(0.2)  # polling a remote state, not standing in for a synchronisation
    raise AssertionError(f"unsettled after the deadline: {statuses}")


def recovery_lines(log: Path, expected: int, timeout: float = 30.0) -> list[str]:
    """The "recovery: N unsettled" counts logged so far, once `expected` starts have logged one:
    a server answers /health before its worker loop has finished its first (recovery) claim."""
    deadline = time.monotonic() + timeout
    while True:
        found = re.findall(r"recovery: (\d+) unsettled", log.read_text())
        if len(found) >= expected or time.monotonic() > deadline:
            return found
        time.sleep(0.05)  # polling a log file another process writes


def applied_operations(db: Path) -> dict[tuple[str, str], str]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT operation, transaction_id, status FROM operations")
        return {(op, tx): status for op, tx, status in rows}
    finally:
        conn.close()


def test_sigkilled_orchestrator_recovers_every_saga_with_money_conserved(
    launch: Launcher, tmp_path: Path
) -> None:
    accounts = launch(credit_failure_rate=0.3, credit_failure_mode="mixed", fault_seed=3)
    orchestrator_env = {
        "accounts_url": accounts.url,
        "retry_attempts": 2,
        "retry_initial_backoff": 0.01,
        "retry_max_backoff": 0.05,
        "settle_attempts": 20,
        "transfer_wait": 10,
        "log_level": "INFO",
    }
    orchestrator = launch(role="orchestrator", name="sagas", **orchestrator_env)
    before = httpx.get(f"{accounts.url}/accounts").json()["total"]

    pending = plan()
    bodies = dict(pending)
    per_round = TRANSFERS // len(KILL_AFTER_RESPONSES)
    kills = 0
    for round_no, kill_after in enumerate(KILL_AFTER_RESPONSES):
        batch = pending[:per_round] if round_no < len(KILL_AFTER_RESPONSES) - 1 else pending
        pending = pending[len(batch) :]
        died = asyncio.run(submit_round(orchestrator.url, batch, kill_after, orchestrator))
        assert orchestrator.proc is not None
        if orchestrator.proc.returncode == -9:
            kills += 1
        pending = [(t, bodies[t]) for t in died] + pending
        orchestrator = launch(
            role="orchestrator", name="sagas", port=orchestrator.port, **orchestrator_env
        )
    assert kills == len(KILL_AFTER_RESPONSES)
    recovered = recovery_lines(tmp_path / "sagas.log", len(KILL_AFTER_RESPONSES) + 1)
    assert len(recovered) == len(KILL_AFTER_RESPONSES) + 1
    assert sum(map(int, recovered)) > 0, "no kill interrupted a saga: the test proved nothing"
    while pending:  # the last restart: every request that died is sent again, same id
        died = asyncio.run(submit_round(orchestrator.url, pending, -1, orchestrator))
        pending = [(t, bodies[t]) for t in died]

    statuses = settled_statuses(orchestrator.url, list(bodies), time.monotonic() + 120)
    assert set(statuses.values()) <= {"completed", "compensated", "rejected"}

    audit = httpx.get(f"{accounts.url}/audit").json()
    assert audit["violations"] == []
    assert httpx.get(f"{accounts.url}/accounts").json()["total"] == before

    ops = applied_operations(tmp_path / "accounts.db")
    for tx_id, status in statuses.items():
        debit = ops.get(("debit", tx_id))
        credit = ops.get(("credit", tx_id))
        compensation = ops.get(("compensate_debit", tx_id))
        if status == "completed":
            assert (debit, credit) == ("applied", "applied"), tx_id
            assert compensation is None, tx_id
        elif status == "compensated":
            assert credit != "applied", tx_id
            assert compensation in ("compensated", "nothing_to_compensate"), tx_id
            assert (debit == "applied") == (compensation == "compensated"), tx_id
        else:
            assert debit in (None, "rejected"), tx_id
            assert credit is None, tx_id
