"""`sagabank serve` (and the commands that drive sagas) refuse a saga log whose unfinished sagas
started under a definition this server defines with another shape: exit 2, one message naming the
saga type, the version, both hashes and how many sagas, and no traceback. The read-only
`sagas list` and `sagas show` work on that very log, showing each saga's stored definition and
marking those whose shape differs here; the demo (`sagabank demo`, `client.py`) meeting such a
log says so in one line, exit 2."""

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
CLIENT = (sys.executable, str(Path(__file__).parents[2] / "repository_after" / "client.py"))
CHANGED = "0123456789abcdef"
DIFFERS = f"definition changed: this server defines {TRANSFER.shape_hash()}"


async def _log_with_changed_transfers(db: Path, *, unchanged: tuple[str, ...] = ()) -> None:
    """Two unfinished transfers under a changed shape (t-1, t-2), and `unchanged` ones under
    this server's."""
    log = SqliteSagaLog(db)
    try:
        for saga_id in ("t-1", "t-2", *unchanged):
            await log.create(
                saga_id=saga_id,
                definition=TRANSFER.name,
                definition_version=1,
                definition_hash=CHANGED if saga_id in ("t-1", "t-2") else TRANSFER.shape_hash(),
                params={"source": "acc-01", "target": "acc-02", "amount": 5},
                events=[SagaEvent(EventKind.STARTED, at="2026-01-01T00:00:00+00:00")],
                status="debiting",
            )
    finally:
        await log.close()


def _sagabank(
    db: Path, *args: str, program: tuple[str, ...] = CLI
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SAGABANK_DATABASE_URL": f"sqlite:///{db}",
        "SAGABANK_ADMIN_TOKEN": "",
        "SAGABANK_SERVICE_TOKEN": "",
        "COLUMNS": "250",  # rich's tables on one line per row
    }
    return subprocess.run(
        [*program, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


async def _untouched(db: Path) -> None:
    log = SqliteSagaLog(db)
    try:  # nothing was driven: both sagas are where they were, unleased
        assert await log.count_by_status() == {"debiting": 2}
        assert len(await log.claim("someone", limit=10, ttl=30)) == 2
    finally:
        await log.close()


@pytest.mark.parametrize(
    "args",
    [
        ("serve", "--port", "1"),
        ("recover", "--wait", "0"),
        ("sagas", "retry", "t-1"),
        ("sagas", "resolve", "t-1"),
    ],
    ids=["serve", "recover", "sagas retry", "sagas resolve"],
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
    await _untouched(db)


async def test_sagas_list_works_on_a_changed_log_and_marks_the_changed_sagas(
    tmp_path: Path,
) -> None:
    db = tmp_path / "sagabank.db"
    await _log_with_changed_transfers(db)
    result = await asyncio.to_thread(_sagabank, db, "sagas", "list")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stdout.splitlines()
    starts = [i for i, line in enumerate(lines) if " t-1 " in line or " t-2 " in line]
    assert len(starts) == 2
    for i in starts:  # each row: its type, then its definition, then how it differs here
        assert lines[i].split("│")[1].strip() == "transfer"
        assert lines[i + 1].split("│")[1].strip() == f"v1 {CHANGED}"
        assert lines[i + 2].split("│")[1].strip() == DIFFERS
    assert result.stdout.count(DIFFERS) == 2
    assert "debiting" in result.stdout
    await _untouched(db)


async def test_sagas_list_marks_only_the_sagas_whose_shape_differs(tmp_path: Path) -> None:
    db = tmp_path / "sagabank.db"
    await _log_with_changed_transfers(db, unchanged=("t-3",))
    result = await asyncio.to_thread(_sagabank, db, "sagas", "list")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"v1 {TRANSFER.shape_hash()}" in result.stdout  # t-3, as this server has it
    assert result.stdout.count("definition changed") == 2


async def test_sagas_show_works_on_a_changed_saga_and_says_its_shape_differs(
    tmp_path: Path,
) -> None:
    db = tmp_path / "sagabank.db"
    await _log_with_changed_transfers(db, unchanged=("t-3",))
    result = await asyncio.to_thread(_sagabank, db, "sagas", "show", "t-1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("transfer t-1: debiting ")  # the log's status, not a replay
    assert lines[1] == f"definition: transfer v1 {CHANGED}"
    assert lines[2] == DIFFERS
    assert "started" in result.stdout  # its history, event by event
    same = await asyncio.to_thread(_sagabank, db, "sagas", "show", "t-3")
    assert same.returncode == 0, same.stdout + same.stderr
    assert f"definition: transfer v1 {TRANSFER.shape_hash()}" in same.stdout
    assert "definition changed" not in same.stdout
    missing = await asyncio.to_thread(_sagabank, db, "sagas", "show", "t-9")
    assert (missing.returncode, missing.stdout.strip()) == (1, "no saga 't-9'")


@pytest.mark.parametrize("program", [(*CLI, "demo"), CLIENT], ids=["sagabank demo", "client.py"])
async def test_the_demo_on_a_changed_log_says_so_in_one_line_and_exits_2(
    tmp_path: Path, program: tuple[str, ...]
) -> None:
    db = tmp_path / "sagabank.db"  # the demo's saga log: SAGABANK_DATABASE_URL
    await _log_with_changed_transfers(db)
    args = ("--transfers", "2", "--accounts-url", "http://127.0.0.1:1", "--data-dir", str(tmp_path))
    result = await asyncio.to_thread(_sagabank, db, *args, program=program)
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output
    assert output.strip().splitlines() == [
        "refusing to start: the saga log holds unfinished sagas this server would resume with "
        "another shape than they started with: saga type 'transfer' version 1: 2 unfinished "
        f"sagas started under shape {CHANGED}, this server defines {TRANSFER.shape_hash()}: "
        "register the changed definition as a new version and keep version 1 as it was"
    ]
    await _untouched(db)


@pytest.mark.parametrize("action", ["retry", "resolve"])
async def test_an_operator_action_on_a_saga_of_a_version_this_server_lacks_is_refused_alone(
    tmp_path: Path, action: str
) -> None:
    """The server starts beside it (a newer release's saga, parked there by the sweep) and
    refuses only that action, in a sentence, exit 1; the saga is left as it was, unleased."""
    db = tmp_path / "sagabank.db"
    log = SqliteSagaLog(db)
    try:
        await log.create(
            saga_id="t-9",
            definition=TRANSFER.name,
            definition_version=2,
            definition_hash=CHANGED,
            params={"source": "acc-01", "target": "acc-02", "amount": 5},
            events=[SagaEvent(EventKind.STARTED, at="2026-01-01T00:00:00+00:00")],
            status="failed_needs_attention",
        )
    finally:
        await log.close()
    result = await asyncio.to_thread(_sagabank, db, "sagas", action, "t-9")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    assert result.stdout.strip() == (
        "saga t-9: saga type 'transfer' version 2 is not registered on this server (a server "
        "that registers it drives this saga)"
    )
    log = SqliteSagaLog(db)
    try:
        stored = await log.load("t-9")
        assert stored is not None
        assert (stored.status, len(stored.events)) == ("failed_needs_attention", 1)
        assert await log.acquire("t-9", "someone", ttl=30) is not None
    finally:
        await log.close()
