"""The service credential across real processes: an account service and an orchestrator
(`sagabank serve --role ...` on loopback) both configured with `SAGABANK_SERVICE_TOKEN`
complete transfers and conserve money, while a caller without the token moves nothing; and
`serve` refuses a public bind unless both tokens are set."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import httpx
import pytest

from tests.e2e.conftest import Launcher

pytestmark = pytest.mark.e2e

SERVICE, ADMIN = "e2e-serv1ce", "e2e-adm1n"
TRANSFERS = 24
CLI = (sys.executable, "-m", "repository_after.entrypoints.cli")


def serve_public(admin: str, service: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SAGABANK_ADMIN_TOKEN": admin, "SAGABANK_SERVICE_TOKEN": service}
    return subprocess.run(
        [*CLI, "serve", "--host", "0.0.0.0", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(
    ("admin", "service", "missing"),
    [
        (ADMIN, "", "SAGABANK_SERVICE_TOKEN"),
        ("", SERVICE, "SAGABANK_ADMIN_TOKEN"),
    ],
)
def test_a_public_bind_needs_both_tokens(admin: str, service: str, missing: str) -> None:
    result = serve_public(admin, service)
    assert result.returncode == 2
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout  # one clear line, also in a narrow terminal
    assert "refusing to serve" in lines[0]
    assert missing in lines[0]
    assert "--insecure" in lines[0]


async def _transfer(client: httpx.AsyncClient, i: int) -> str:
    body = {"source": f"acc-{i % 10 + 1:02d}", "target": f"acc-{(i + 3) % 10 + 1:02d}"}
    answer = await client.post(
        "/transfers", json={**body, "amount": 100 + i}, headers={"transaction-id": f"tok-{i}"}
    )
    assert answer.status_code == 200, answer.text
    status: str = answer.json()["status"]
    return status


async def _submit(url: str) -> list[str]:
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        return list(await asyncio.gather(*(_transfer(client, i) for i in range(TRANSFERS))))


def test_two_services_with_the_token_move_money_and_strangers_do_not(launch: Launcher) -> None:
    accounts = launch(admin_token=ADMIN, service_token=SERVICE)
    # Reads need a token too when one is configured (closed reads).
    books = httpx.Client(
        base_url=accounts.url, timeout=15, headers={"Authorization": f"Bearer {ADMIN}"}
    )
    before = books.get("/accounts").json()["total"]

    stranger = books.post(
        "/debit",
        json={"account_id": "acc-01", "amount": 5_000},
        headers={"transaction-id": "stolen-1", "Authorization": f"Bearer {ADMIN}"},
    )
    assert stranger.status_code == 401

    # Without the token the orchestrator's calls are refused: its transfers move nothing.
    common = {"role": "orchestrator", "accounts_url": accounts.url, "transfer_wait": 30}
    tokenless = launch(name="tokenless", **common)
    refused = httpx.post(
        f"{tokenless.url}/transfers",
        json={"source": "acc-01", "target": "acc-02", "amount": 10},
        headers={"transaction-id": "tokenless-1"},
        timeout=60,
    )
    assert refused.json()["status"] == "rejected"
    assert refused.json()["attempts"][0]["status_code"] == 401

    orchestrator = launch(name="sagas", service_token=SERVICE, **common)
    statuses = asyncio.run(_submit(orchestrator.url))
    assert statuses == ["completed"] * TRANSFERS

    after = books.get("/accounts").json()
    assert after["total"] == before
    assert books.get("/accounts/acc-01").json()["balance"] != 100_000  # money did move
    audit = books.get("/audit").json()
    assert audit["ok"] is True, audit
    books.close()
