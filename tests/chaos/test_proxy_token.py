"""The chaos proxy passes the service credential on: a single request's `Authorization` header,
and a batch's, which each item's single request carries as the batch did. A real account
service with a service token (uvicorn on loopback) behind a real proxy."""

from __future__ import annotations

from pathlib import Path

import httpx

from repository_after.config import ProcessRole
from sagabank_tools.chaos.proxy import FaultProxy
from sagabank_tools.chaos.schedule import Schedule
from tests.integration.observability_support import served, settings

TOKEN = "chaos-t0ken"
BATCH = {
    "operations": [
        {"operation": "debit", "transaction_id": "pt-1", "account_id": "acc-01", "amount": 5},
        {"operation": "credit", "transaction_id": "pt-1", "account_id": "acc-02", "amount": 5},
    ]
}


async def test_the_proxy_forwards_the_service_token_on_singles_and_batch_items(
    tmp_path: Path,
) -> None:
    accounts = settings(tmp_path, "accounts", role=ProcessRole.ACCOUNTS, service_token=TOKEN)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with served(accounts) as upstream:
        proxy = FaultProxy(schedule=Schedule(seed=1, families=()), upstream=upstream)
        url = await proxy.start()
        try:
            async with httpx.AsyncClient(base_url=url) as client:
                stranger = await client.post("/batch", json=BATCH)
                batch = await client.post("/batch", json=BATCH, headers=auth)
                single = await client.post(
                    "/debit",
                    json={"account_id": "acc-01", "amount": 1},
                    headers={"transaction-id": "pt-2", **auth},
                )
                total = (await client.get("/accounts")).json()["total"]
        finally:
            await proxy.close()
    assert [r["status_code"] for r in stranger.json()["results"]] == [401, 401]
    assert [r["status_code"] for r in batch.json()["results"]] == [200, 200]
    assert single.status_code == 200
    assert total == 2 * 1000 - 1  # the two demo accounts; only the authorised calls moved money
