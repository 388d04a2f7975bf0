"""The demo against an account service whose money calls and reads are closed by tokens.

The user runs `sagabank serve --role accounts` with `SAGABANK_ADMIN_TOKEN` and
`SAGABANK_SERVICE_TOKEN` set, and the demo against it (`--accounts-url`) with the same tokens
exported: the orchestrator must present the service token on every call, and the demo must read
the books (accounts, audit) with a token, or every transfer and every read is refused.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from repository_after.entrypoints.service_process import ServiceProcess
from tests.e2e.test_demo_resume import OPENED, demo_args, demo_env

pytestmark = pytest.mark.e2e

TOKENS = {"SAGABANK_ADMIN_TOKEN": "demo-admin-secret", "SAGABANK_SERVICE_TOKEN": "demo-service"}


def test_the_demo_runs_against_a_service_with_closed_money_calls_and_reads(tmp_path: Path) -> None:
    env = {**demo_env(), **TOKENS}
    env.pop("SAGABANK_READ_TOKEN", None)
    accounts_env = {**TOKENS, "SAGABANK_DATABASE_URL": f"sqlite:///{tmp_path / 'books.db'}"}
    with ServiceProcess(env=accounts_env, role="accounts") as accounts:
        run = subprocess.run(
            [*demo_args(tmp_path, 20), "--accounts-url", accounts.url],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads([line for line in run.stdout.splitlines() if line.startswith("{")][-1])
    assert summary["conserved"] is True
    assert summary["audit_ok"] is True
    assert summary["total_before"] == summary["total_after"] == OPENED
    assert summary["outcomes"].get("completed", 0) > 0  # money moved: the service token worked
