"""`sagabank recover` right after an orchestrator's SIGKILL, while its leases are still live.

Real processes on loopback: an account service, SIGSTOPped so that the orchestrator's sagas
stay in flight (their debit calls hang), and an orchestrator that starts them and is SIGKILLed.
The account service is then resumed. The killed worker's leases outlive it by up to the ttl:
`recover` must not say "nothing to do" and exit 0 while those sagas remain. It waits for the
leases to expire (short ttl), lists them and exits non-zero (`--wait` shorter than the ttl), or
takes them at once (`--take-over`).
"""

from __future__ import annotations

import os
import signal
import sqlite3
from pathlib import Path

import httpx
import pytest

from repository_after.domain.saga import TERMINAL
from tests.e2e.conftest import Launcher
from tests.e2e.test_saga_admin_cli import sagabank

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

SAGAS = 6
TERMINAL_VALUES = {s.value for s in TERMINAL}


def statuses(db: Path) -> dict[str, str]:
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT saga_id, status FROM sagas").fetchall())
    finally:
        conn.close()


def strand_sagas(launch: Launcher, tmp_path: Path, lease_ttl: float) -> dict[str, str]:
    """Start SAGAS transfers on an orchestrator whose account service is frozen, SIGKILL the
    orchestrator, thaw the service. Returns the CLI environment for that saga log."""
    accounts = launch()
    orchestrator = launch(
        role="orchestrator",
        name="sagas",
        accounts_url=accounts.url,
        lease_ttl=lease_ttl,
        claim_interval=min(1.0, lease_ttl / 2),
        transfer_wait=0,
    )
    assert accounts.proc is not None
    assert orchestrator.proc is not None
    os.kill(accounts.proc.pid, signal.SIGSTOP)
    try:
        with httpx.Client(base_url=orchestrator.url, timeout=10) as client:
            for i in range(SAGAS):
                r = client.post(
                    "/transfers",
                    json={"source": "acc-01", "target": "acc-02", "amount": 10 + i},
                    headers={"transaction-id": f"stranded-{i}"},
                )
                assert r.status_code == 202, r.text
        orchestrator.kill()
    finally:
        os.kill(accounts.proc.pid, signal.SIGCONT)
    stranded = statuses(tmp_path / "sagas.db")
    assert len(stranded) == SAGAS
    assert not set(stranded.values()) & TERMINAL_VALUES, "the kill interrupted nothing"
    return {
        "SAGABANK_DATABASE_URL": f"sqlite:///{tmp_path / 'sagas.db'}",
        "SAGABANK_ACCOUNTS_URL": accounts.url,
        "SAGABANK_LEASE_TTL": str(lease_ttl),
        "SAGABANK_WORKER_ID": "operator",
        "SAGABANK_SERVICE_TOKEN": "",
        "SAGABANK_LOG_LEVEL": "WARNING",
    }


def assert_settled(tmp_path: Path, env: dict[str, str]) -> None:
    assert set(statuses(tmp_path / "sagas.db").values()) <= {"completed", "compensated"}
    audit = httpx.get(f"{env['SAGABANK_ACCOUNTS_URL']}/audit").json()
    assert (audit["ok"], audit["violations"]) == (True, [])


def test_recover_waits_for_the_dead_worker_s_leases_then_drives_them(
    launch: Launcher, tmp_path: Path
) -> None:
    env = strand_sagas(launch, tmp_path, lease_ttl=3.0)
    done = sagabank(env, "recover")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "waiting for the leases of" in done.stdout
    assert "nothing to do" not in done.stdout
    assert_settled(tmp_path, env)


def test_recover_lists_what_it_could_not_take_and_exits_non_zero_then_takes_over(
    launch: Launcher, tmp_path: Path
) -> None:
    env = strand_sagas(launch, tmp_path, lease_ttl=600.0)
    short = sagabank(env, "recover", "--wait", "0.5")
    assert short.returncode == 1, short.stdout + short.stderr
    for i in range(SAGAS):
        assert f"stranded-{i}" in short.stdout
    assert "--take-over" in short.stdout
    assert not set(statuses(tmp_path / "sagas.db").values()) & TERMINAL_VALUES

    taken = sagabank(env, "recover", "--take-over")
    assert taken.returncode == 0, taken.stdout + taken.stderr
    assert "waiting" not in taken.stdout
    # (The CLI's 60 s timeout is far under the 600 s ttl: the take-over did not wait for it.)
    assert_settled(tmp_path, env)
