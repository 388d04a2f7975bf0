"""`sagabank sagas list|show|retry|resolve` and `sagabank recover` on a real saga log.

Two transfers are parked for real: the account service is down, so the debit's outcome stays
unknown, and so does its compensation. Then the service comes up and an operator acts.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from repository_after.adapters.http_participant import HttpParticipant
from repository_after.bootstrap import build_orchestrator
from repository_after.config import Settings
from repository_after.domain.transfer import ACCOUNTS, TRANSFER
from repository_after.entrypoints.service_process import free_port
from tests.e2e.conftest import Launcher


def settings_env(tmp_path: Path, port: int) -> dict[str, str]:
    return {
        "SAGABANK_DATABASE_URL": f"sqlite:///{tmp_path / 'sagas.db'}",
        "SAGABANK_ACCOUNTS_URL": f"http://127.0.0.1:{port}",
        "SAGABANK_RETRY_ATTEMPTS": "1",
        "SAGABANK_SETTLE_ATTEMPTS": "2",
        "SAGABANK_RETRY_INITIAL_BACKOFF": "0.01",
        "SAGABANK_RETRY_MAX_BACKOFF": "0.02",
    }


async def park_two_transfers(env: dict[str, str]) -> list[str]:
    settings = Settings(**{k.removeprefix("SAGABANK_").lower(): v for k, v in env.items()})
    participant = HttpParticipant({ACCOUNTS: settings.resolved_accounts_url()})
    orchestrator = build_orchestrator(settings, participant=participant, observers=())
    statuses = []
    for saga_id in ("p-1", "p-2"):
        _, state = await orchestrator.run(
            TRANSFER.name, {"source": "acc-01", "target": "acc-02", "amount": 10}, saga_id=saga_id
        )
        statuses.append(str(state.status))
    await orchestrator.log.close()
    await participant.close()
    return statuses


def sagabank(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "repository_after.entrypoints.cli", *args],
        env={**os.environ, **env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_operator_lists_shows_retries_and_resolves_parked_sagas(
    launch: Launcher, tmp_path: Path
) -> None:
    port = free_port()
    env = settings_env(tmp_path, port)
    assert asyncio.run(park_two_transfers(env)) == ["failed_needs_attention"] * 2

    listed = sagabank(env, "sagas", "list", "--state", "failed_needs_attention")
    assert listed.returncode == 0, listed.stderr
    assert "p-1" in listed.stdout
    assert "p-2" in listed.stdout

    shown = sagabank(env, "sagas", "show", "p-1")
    assert "failed_needs_attention" in shown.stdout
    assert "compensate_debit" in shown.stdout
    assert "retries_exhausted" in shown.stdout

    launch(port=port, demo_accounts=2)
    retried = sagabank(env, "sagas", "retry", "p-1")
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert "p-1: compensated" in retried.stdout

    resolved = sagabank(env, "sagas", "resolve", "p-2", "--note", "checked by hand")
    assert "p-2: resolved" in resolved.stdout
    assert "checked by hand" in sagabank(env, "sagas", "show", "p-2").stdout

    again = sagabank(env, "sagas", "retry", "p-1")
    assert again.returncode == 1
    assert "only a parked saga" in again.stdout
    missing = sagabank(env, "sagas", "show", "nope")
    assert missing.returncode == 1

    recovered = sagabank(env, "recover")
    assert recovered.returncode == 0
    assert "nothing to do" in recovered.stdout
