"""`sagabank sagas list [--type T] [--status S]` as an operator runs it (a real process on a real
SQLite saga log): every type by default with a type column, one type with `--type`, a status of
that type with `--status` (`--state` still works), the counts by type and status; a type or a
status no saga can have is one red line and exit 2, no traceback."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from repository_after.adapters.sqlite_saga_log import SqliteSagaLog
from repository_after.domain.order import ORDER
from repository_after.domain.saga import EventKind, SagaEvent
from repository_after.domain.transfer import TRANSFER

CLI = (sys.executable, "-m", "repository_after.entrypoints.cli")
ORDER_PARAMS = {"customer": "acc-01", "merchant": "acc-02", "lines": [], "total": 300}
#: (id, type, second it started at, status)
SAGAS = [
    ("o-1", ORDER, 1, "completed"),
    ("t-2", TRANSFER, 2, "completed"),
    ("o-3", ORDER, 3, "failed_needs_attention"),
    ("t-4", TRANSFER, 4, "compensated"),
]


async def _write(db: Path) -> None:
    log = SqliteSagaLog(db)
    try:
        for saga_id, definition, second, status in SAGAS:
            params = (
                {**ORDER_PARAMS, "order_id": saga_id}
                if definition is ORDER
                else {"source": "acc-01", "target": "acc-02", "amount": 5}
            )
            await log.create(
                saga_id=saga_id,
                definition=definition.name,
                definition_version=definition.version,
                definition_hash=definition.shape_hash(),
                params=params,
                events=[SagaEvent(EventKind.STARTED, at=f"2026-01-01T00:00:0{second}+00:00")],
                status=status,
            )
    finally:
        await log.close()


@pytest.fixture
async def db(tmp_path: Path) -> Path:
    path = tmp_path / "sagabank.db"
    await _write(path)
    return path


async def sagas_list(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "SAGABANK_DATABASE_URL": f"sqlite:///{db}",
        "SAGABANK_ADMIN_TOKEN": "",
        "SAGABANK_SERVICE_TOKEN": "",
        "COLUMNS": "250",
    }
    return await asyncio.to_thread(
        subprocess.run,
        [*CLI, "sagas", "list", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def rows(stdout: str) -> list[list[str]]:
    """The cells of each table row rich drew (`│ a │ b │`), header rows included."""
    return [
        [cell.strip() for cell in line.strip().strip("│").split("│")]
        for line in stdout.splitlines()
        if line.strip().startswith("│")
    ]


def listed(stdout: str) -> list[tuple[str, str, str]]:
    """(type, id, status) of the sagas table: its rows whose id is one of ours."""
    ids = {saga_id for saga_id, *_ in SAGAS}
    return [(r[0], r[1], r[2]) for r in rows(stdout) if len(r) == 6 and r[1] in ids]


def counts(stdout: str) -> set[tuple[str, str, str]]:
    return {(r[0], r[1], r[2]) for r in rows(stdout) if len(r) == 3 and r[2].isdigit()}


async def test_every_type_is_listed_with_a_type_column_and_counted_by_type(db: Path) -> None:
    result = await sagas_list(db)
    assert result.returncode == 0, result.stdout + result.stderr
    assert listed(result.stdout) == [
        ("transfer", "t-4", "compensated"),
        ("order", "o-3", "failed_needs_attention"),
        ("transfer", "t-2", "completed"),
        ("order", "o-1", "completed"),
    ]
    assert '"merchant": "acc-02"' in result.stdout  # an order's own parameters
    assert counts(result.stdout) == {
        ("order", "completed", "1"),
        ("order", "failed_needs_attention", "1"),
        ("transfer", "completed", "1"),
        ("transfer", "compensated", "1"),
    }


async def test_one_type_and_one_of_its_statuses(db: Path) -> None:
    orders = await sagas_list(db, "--type", "order")
    assert orders.returncode == 0, orders.stdout + orders.stderr
    assert listed(orders.stdout) == [
        ("order", "o-3", "failed_needs_attention"),
        ("order", "o-1", "completed"),
    ]
    assert counts(orders.stdout) == {
        ("order", "completed", "1"),
        ("order", "failed_needs_attention", "1"),
    }
    done = await sagas_list(db, "--type", "order", "--status", "completed")
    assert listed(done.stdout) == [("order", "o-1", "completed")]
    old_name = await sagas_list(db, "--state", "completed", "--limit", "1")
    assert listed(old_name.stdout) == [("transfer", "t-2", "completed")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--type", "refund"), "no saga type 'refund'"),
        (("--type", "order", "--status", "debiting"), "no status 'debiting': one of started,"),
        (("--status", "nonsense"), "no status 'nonsense'"),
    ],
    ids=["unknown-type", "another-types-status", "unknown-status"],
)
async def test_a_type_or_status_no_saga_can_have_is_exit_2(
    db: Path, args: tuple[str, ...], message: str
) -> None:
    result = await sagas_list(db, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
