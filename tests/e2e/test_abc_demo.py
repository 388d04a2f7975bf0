"""`sagabank demo --saga abc` as a real process: A, B and C as three `sagabank serve --role abc-*`
children, each with its table in its own database, and an orchestrator child registering `abc`;
the seed's failure table run live.

On SQLite (the default): the four seed rows match, and the databases themselves, read apart from
what the demo printed, agree: each service's file holds its one table with the row of the saga
that completed alone, and the orchestrator's saga log holds the four sagas at their statuses. On
MariaDB (`--database-url`, three fresh databases): the rows where B and C fail, and nothing
fails, match, each service's table in its own database. A default `sagabank serve` still does
not know the type (opt-in), and a `--fail` that names no row exits 2 before anything starts.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Launcher
from tests.e2e.test_demo_resume import demo_env
from tests.mariadb import fresh_database, plain_connect_args

pytestmark = pytest.mark.e2e


def abc_demo(data_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "repository_after.entrypoints.cli", "demo", "--saga", "abc"]
    args += ["--data-dir", str(data_dir), "--json", *extra]
    return subprocess.run(
        args, env=demo_env(), capture_output=True, text=True, timeout=180, check=False
    )


def result_of(run: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    result: dict[str, Any] = json.loads(run.stdout)
    return result


def sqlite_rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return list(conn.execute(sql))
    finally:
        conn.close()


def test_the_seed_rows_run_on_four_processes_and_the_databases_agree(tmp_path: Path) -> None:
    data = tmp_path / "data"
    result = result_of(abc_demo(data))
    assert result["ok"] is True
    ran = {r["row"]: r for r in result["rows"]}
    assert list(ran) == ["none", "A refuse", "B refuse", "C refuse"]
    assert [r["status"] for r in ran.values()] == [
        "completed",
        "rejected",
        "compensated",
        "compensated",
    ]
    assert ran["C refuse"]["calls"] == {
        "A": ["A.do 200 done", "A.undo 200 undone"],
        "B": ["B.do 200 done", "B.undo 200 undone"],
        "C": ["C.do 409 refused"],
    }
    completed = ran["none"]["saga_id"]
    for name in "abc":
        db = data / f"demo-abc-{name}.db"
        assert sqlite_rows(db, "SELECT entry, ref, amount FROM entries") == [
            (f"{completed}:{name}", "demo", 100)
        ]
    log = data / "demo-abc-sagas.db"
    stored = dict(sqlite_rows(log, "SELECT saga_id, status FROM sagas"))
    assert stored == {r["saga_id"]: r["status"] for r in ran.values()}


def test_the_rows_where_b_and_c_fail_run_with_each_table_in_its_own_mariadb_database(
    tmp_path: Path,
) -> None:
    with fresh_database() as a, fresh_database() as b, fresh_database() as c:
        urls = {"a": a, "b": b, "c": c}
        fails = ["none", "B:refuse", "C:refuse", "C:unknown"]
        run = abc_demo(
            tmp_path / "data",
            *(f"--fail={f}" for f in fails),
            *(f"--database-url={url}" for url in urls.values()),
        )
        result = result_of(run)
        assert result["ok"] is True
        assert [r["status"] for r in result["rows"]] == ["completed", *["compensated"] * 3]
        completed = result["rows"][0]["saga_id"]
        import pymysql

        for name, url in urls.items():
            conn = pymysql.connect(**plain_connect_args(url))
            try:
                with conn.cursor() as cursor:
                    cursor.execute("SELECT entry FROM entries")
                    assert cursor.fetchall() == ((f"{completed}:{name}",),)
            finally:
                conn.close()


def test_a_default_server_does_not_know_the_abc_type(launch: Launcher) -> None:
    server = launch(role="all", name="all")
    answer = httpx.post(f"{server.url}/sagas/abc", json={"ref": "r", "amount": 1}, timeout=10)
    assert answer.status_code == 404, answer.text
    assert answer.json()["error"] == "saga_type_not_found"


def test_a_fail_that_names_no_row_exits_2_before_anything_starts(tmp_path: Path) -> None:
    run = abc_demo(tmp_path / "data", "--fail", "D:refuse")
    assert run.returncode == 2, run.stderr
    assert "expected none, all, or S:FAULT[:once]" in run.stderr
    assert not list((tmp_path / "data").glob("demo-abc*"))
