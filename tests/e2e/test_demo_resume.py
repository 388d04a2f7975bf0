"""A real `sagabank demo` process is SIGKILLed mid-run, then run again on the same data dir.

The demo keeps its saga log and its account service's books in `--data-dir`. The kill (of the
demo's whole process group: the demo and the account service it started) leaves sagas in flight,
some with money debited and neither credited nor refunded. The second run must first drive those
to an end and say so, then run its own transfers: every saga settled, the audit ok over the whole
books, and the total money what the demo accounts were opened with.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repository_after.domain.saga import AT_REST

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

AT_REST_VALUES = {s.value for s in AT_REST}
OPENED = 10 * 100_000  # the demo accounts the service opens: SAGABANK_DEMO_ACCOUNTS x BALANCE


def demo_args(data_dir: Path, transfers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "repository_after.entrypoints.cli",
        "demo",
        "--data-dir",
        str(data_dir),
        "--transfers",
        str(transfers),
        "--json",
    ]


def demo_env() -> dict[str, str]:
    env = {**os.environ, "COLUMNS": "200"}
    for name in ("SAGABANK_DATABASE_URL", "SAGABANK_DEMO_ACCOUNTS", "SAGABANK_DEMO_BALANCE"):
        env.pop(name, None)
    return env


def statuses(db: Path) -> list[str]:
    if not db.exists():
        return []
    conn = sqlite3.connect(db, timeout=10)
    try:
        return [status for (status,) in conn.execute("SELECT status FROM sagas")]
    except sqlite3.OperationalError:  # the demo has not created its tables yet
        return []
    finally:
        conn.close()


def test_demo_killed_mid_run_resumes_its_unsettled_sagas_on_the_next_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    sagas_db = data / "demo-sagas.db"
    first = subprocess.Popen(
        demo_args(data, 2000),
        env=demo_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill takes its account service too
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            seen = statuses(sagas_db)
            if len(seen) >= 40 and any(s not in AT_REST_VALUES for s in seen):
                break
            assert first.poll() is None, "the demo ended before it could be killed"
            time.sleep(0.05)  # polling a database another process writes
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    stranded = [s for s in statuses(sagas_db) if s not in AT_REST_VALUES]
    assert stranded, "the kill interrupted no saga: the test proved nothing"

    second = subprocess.run(
        demo_args(data, 20),
        env=demo_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"resumed {len(stranded)} unsettled sagas from a previous run" in second.stderr
    result = json.loads(second.stdout)
    assert sum(result["resumed"].values()) == len(stranded)
    assert (result["unsettled"], result["audit_ok"], result["conserved"]) == (0, True, True)
    assert result["audit_violations"] == []
    assert result["total_before"] == result["total_after"] == OPENED
    assert sum(result["outcomes"].values()) == 20
    assert all(s in AT_REST_VALUES for s in statuses(sagas_db))
