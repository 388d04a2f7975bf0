"""`sagabank serve` (and the commands that drive sagas) refuse a saga log whose unfinished sagas
started under a definition this server defines with another shape: exit 2, one message naming the
saga type, the version, both hashes and how many sagas, and no traceback."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from repository_after.adapters.sqlite_saga_log import SqliteSagaLog
from repository_after.domain.saga import EventKind, SagaEvent
from repository_after.domain.transfer import TRANSFER

CLI = (sys.executable, "-m", "repository_after.entrypoints.cli")
CHANGED = "0123456789abcdef"


async def _log_with_changed_transfers(db: Path) -> None:
    log = SqliteSagaLog(db)
    try:
        for saga_id in ("t-1", "t-2"):
            await log.create(
                saga_id=saga_id,
                definition=TRANSFER.name,
                definition_version=1,
                definition_hash=CHANGED,
                params={"source": "acc-01", "target": "acc-02", "amount": 5},
                events=[SagaEvent(EventKind.STARTED, at="2026-01-01T00:00:00+00:00")],
                status="debiting",
            )
    finally:
        await log.close()


def _sagabank(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SAGABANK_DATABASE_URL": f"sqlite:///{db}",
        "SAGABANK_ADMIN_TOKEN": "",
        "SAGABANK_SERVICE_TOKEN": "",
    }
    return subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    "args",
    [("serve", "--port", "1"), ("recover", "--wait", "0"), ("sagas", "retry", "t-1")],
    ids=["serve", "recover", "sagas retry"],
)
async def test_a_changed_definition_under_the_same_version_is_refused_at_start(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    db = tmp_path / "sagabank.db"
    await _log_with_changed_transfers(db)
    result = await asyncio.to_thread(_sagabank, db, *args)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    assert (
        f"saga type 'transfer' version 1: 2 unfinished sagas started under shape {CHANGED}, "
        f"this server defines {TRANSFER.shape_hash()}: register the changed definition as a new "
        "version and keep version 1 as it was"
    ) in result.stdout
    log = SqliteSagaLog(db)
    try:  # nothing was driven: both sagas are where they were, unleased
        assert await log.count_by_status() == {"debiting": 2}
        assert len(await log.claim("someone", limit=10, ttl=30)) == 2
    finally:
        await log.close()
