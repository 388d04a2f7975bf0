"""`sagabank gc` on a real SQLite file: old records and sagas go, the audit does not move."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from repository_after.adapters.http_participant import HttpParticipant
from repository_after.bootstrap import build_orchestrator
from repository_after.config import Settings
from repository_after.domain.transfer import ACCOUNTS, TRANSFER
from tests.e2e.conftest import Launcher


def sagabank(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "repository_after.entrypoints.cli", *args],
        env={**os.environ, **env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def run_transfers(db: Path, accounts_url: str) -> None:
    settings = Settings(database_url=f"sqlite:///{db}", accounts_url=accounts_url)
    participant = HttpParticipant({ACCOUNTS: accounts_url})
    orchestrator = build_orchestrator(settings, participant=participant, observers=())
    for i in range(4):
        await orchestrator.run(
            TRANSFER.name,
            {"source": "acc-01", "target": "acc-02", "amount": 10 + i},
            saga_id=f"gc-{i}",
        )
    await orchestrator.close()
    await orchestrator.log.close()
    await participant.close()


def age(db: Path, sql: str) -> None:
    conn = sqlite3.connect(db)
    conn.execute(sql)
    conn.commit()
    conn.close()


def test_gc_purges_old_records_and_sagas_and_keeps_the_audit(
    launch: Launcher, tmp_path: Path
) -> None:
    service = launch(demo_accounts=2)
    sagas_db = tmp_path / "sagas.db"
    asyncio.run(run_transfers(sagas_db, service.url))
    service.stop()
    accounts_db = tmp_path / "accounts.db"
    accounts_env = {"SAGABANK_DATABASE_URL": f"sqlite:///{accounts_db}"}
    before = json.loads(sagabank(accounts_env, "audit", "--json").stdout)

    age(
        accounts_db,
        "UPDATE operations SET created_at = '2000-01-01T00:00:00+00:00'"
        " WHERE transaction_id IN ('gc-0', 'gc-1')",
    )
    age(
        sagas_db, "UPDATE sagas SET updated_at = '2000-01-01T00:00:00+00:00' WHERE saga_id = 'gc-0'"
    )
    purged = sagabank(accounts_env, "gc")
    assert purged.returncode == 0, purged.stderr
    assert "purged 4 operation record(s)" in purged.stdout
    swept = sagabank({"SAGABANK_DATABASE_URL": f"sqlite:///{sagas_db}"}, "gc")
    assert "1 settled saga(s)" in swept.stdout

    after = json.loads(sagabank(accounts_env, "audit", "--json").stdout)
    assert after == before
    assert after["ok"] is True
    conn = sqlite3.connect(sagas_db)
    assert conn.execute("SELECT COUNT(*) FROM sagas").fetchone()[0] == 3
    assert (
        conn.execute("SELECT COUNT(*) FROM saga_events WHERE saga_id = 'gc-0'").fetchone()[0] == 0
    )
    conn.close()

    refused = sagabank(accounts_env, "gc", "--retention-days", "0.0001")
    assert refused.returncode == 2
    assert "retry horizon" in refused.stdout
