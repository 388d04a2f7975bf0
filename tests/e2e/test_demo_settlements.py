"""A real `sagabank demo --fault-mode after` shows the faults it injected and how each was settled.

With `after`, a failed credit IS applied and only its answer is lost: an unknown outcome. The
summary must show those lost answers (the account service's injected-fault counter) and that
each was settled by `void_credit` answering `already_applied` (the saga completed), in the JSON
and in the printed table, with money conserved.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]


def run_demo(data_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    for name in ("SAGABANK_DATABASE_URL", "SAGABANK_DEMO_ACCOUNTS", "SAGABANK_DEMO_BALANCE"):
        env.pop(name, None)
    args = [sys.executable, "-m", "repository_after.entrypoints.cli", "demo"]
    args += ["--data-dir", str(data_dir), "--transfers", "40", "--seed", "7"]
    args += ["--fault-mode", "after", *extra]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=120, check=False)


def test_demo_json_shows_lost_answers_settled_as_already_applied(tmp_path: Path) -> None:
    done = run_demo(tmp_path / "data", "--json")
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout)
    injected = result["faults_injected"]
    settled = result["settlements"]
    assert injected["after"] > 0
    assert injected["before"] == 0
    assert settled["settled_already_applied"] > 0
    # Retries are 0 by default: each lost answer is settled by void_credit, and it landed.
    assert settled["settled_already_applied"] == injected["after"]
    assert settled["settled_voided"] == 0
    assert result["conserved"]
    assert result["audit_ok"]


def test_demo_table_shows_the_fault_and_settlement_rows(tmp_path: Path) -> None:
    done = run_demo(tmp_path / "data")
    assert done.returncode == 0, done.stdout + done.stderr
    for row in (
        "credit faults injected before applying",
        "credit faults injected after applying",
        "unknown outcome, retried to success",
        "unknown credit, void_credit: already_applied (completed)",
        "unknown credit, void_credit: voided (then compensated)",
        "unknown debit, compensated",
        "total money after (in units)",
    ):
        assert row in done.stdout, row
