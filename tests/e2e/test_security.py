"""The admin surface is closed by default where it matters, and errors never leak internals."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Launcher

pytestmark = pytest.mark.e2e


def serve(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "repository_after.entrypoints.cli", "serve", *args],
        env={**os.environ, "SAGABANK_ADMIN_TOKEN": "", **(env or {})},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_serving_on_a_public_address_without_a_token_is_refused() -> None:
    result = serve("--host", "0.0.0.0", "--port", "1")
    assert result.returncode == 2
    assert "refusing to serve" in result.stdout
    assert "--insecure" in result.stdout


def test_minting_and_fault_changes_need_the_token_when_configured(launch: Launcher) -> None:
    service = launch(admin_token="t0ken", demo_accounts=1)
    open_body = {"account_id": "rich", "initial_balance": 10**12}
    assert httpx.post(f"{service.url}/accounts", json=open_body).status_code == 401
    faults = {"rate": 0.0, "mode": "before"}
    assert httpx.put(f"{service.url}/admin/faults", json=faults).status_code == 401
    auth = {"Authorization": "Bearer t0ken"}
    assert httpx.put(f"{service.url}/admin/faults", json=faults, headers=auth).status_code == 200
    assert httpx.get(f"{service.url}/accounts", headers=auth).json()["total"] == 100_000


def test_a_broken_database_answers_503_without_sql_or_traceback(
    launch: Launcher, tmp_path: Path
) -> None:
    service = launch(demo_accounts=1)
    conn = sqlite3.connect(tmp_path / "accounts.db")
    conn.execute("DROP TABLE operations")
    conn.commit()
    conn.close()
    r = httpx.post(
        f"{service.url}/debit",
        headers={"transaction-id": "broken-1"},
        json={"account_id": "acc-01", "amount": 1},
    )
    assert r.status_code == 503
    assert r.json()["error"] == "storage_unavailable"
    for leak in ("Traceback", "sqlite", "SELECT", "operations", 'File "'):
        assert leak not in r.text
    assert "no such table" in (tmp_path / "accounts.log").read_text()  # logged for operators


@pytest.mark.parametrize("path", ["/nope", "/accounts/x/entries?limit=0"])
def test_routing_and_query_errors_are_json_too(launch: Launcher, path: str) -> None:
    service = launch(demo_accounts=1)
    r = httpx.get(f"{service.url}{path}")
    assert 400 <= r.status_code < 500
    assert set(r.json()) >= {"error", "message"}
