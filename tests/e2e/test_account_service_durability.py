"""An acknowledged operation survives SIGKILL of the account service."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import Launcher

pytestmark = pytest.mark.e2e


def test_debit_acknowledged_right_before_sigkill_is_still_there_after_restart(
    launch: Launcher, tmp_path: Path
) -> None:
    service = launch(demo_accounts=2, demo_balance=1000)
    headers = {"transaction-id": "durable-1"}
    body = {"account_id": "acc-01", "amount": 250}
    first = httpx.post(f"{service.url}/debit", json=body, headers=headers, timeout=5)
    assert first.status_code == 200
    service.kill()
    assert service.proc is not None
    assert service.proc.returncode == -9

    restarted = launch(demo_accounts=2, demo_balance=1000, port=service.port)
    account = httpx.get(f"{restarted.url}/accounts/acc-01", timeout=5).json()
    assert account["balance"] == 750
    again = httpx.post(f"{restarted.url}/debit", json=body, headers=headers, timeout=5)
    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    report = httpx.get(f"{restarted.url}/audit", timeout=5).json()
    assert report["in_flight"] == 250  # debited, never credited: the books say so, exactly
    assert [v.split(":")[0] for v in report["violations"]] == ["not_conserved"]
