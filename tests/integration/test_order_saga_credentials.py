"""The order saga across four processes that each hold their own credential, as
docs/operations.md deploys them: the account service, the inventory and the orders services
(each under uvicorn on loopback, its own SQLite file, its own `SAGABANK_SERVICE_TOKEN`, one read
token), and an orchestrator that holds the account service's token and names the other two in
`SAGABANK_SERVICES` with theirs. The orchestrator sends each service its own token (a wrong one
would be refused, 401, and the order would not complete); every participant's reads need the
read token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.integration.observability_support import (
    orchestrator_client,
    orchestrator_settings,
    served,
    settings,
)
from tests.integration.test_order_saga_e2e import OPENING, Stack, assert_invariants, order, run

ACCOUNTS, INVENTORY, ORDERS, READ = "acc-t0ken", "inv-t0ken", "ord-t0ken", "r3ad-t0ken"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    reads = {"read_token": READ, "demo_accounts": 2, "demo_balance": OPENING}
    async with (
        served(
            settings(tmp_path, "accounts", role="accounts", service_token=ACCOUNTS, **reads)
        ) as accounts_url,
        served(
            settings(tmp_path, "inventory", role="inventory", service_token=INVENTORY, **reads)
        ) as inventory_url,
        served(
            settings(tmp_path, "orders", role="orders", service_token=ORDERS, **reads)
        ) as orders_url,
    ):
        services = {
            "inventory": {"url": inventory_url, "token": INVENTORY},
            "orders": {"url": orders_url, "token": ORDERS},
        }
        config = orchestrator_settings(
            tmp_path,
            accounts_url,
            services=services,
            service_token=ACCOUNTS,
            read_token=READ,
            retry_attempts=1,
            transfer_wait=30,
        )
        async with (
            orchestrator_client(config) as sagas,
            httpx.AsyncClient(base_url=accounts_url, headers=bearer(READ)) as accounts,
            httpx.AsyncClient(base_url=inventory_url, headers=bearer(READ)) as inventory,
            httpx.AsyncClient(base_url=orders_url, headers=bearer(READ)) as orders,
        ):
            sagas.headers.update(bearer(READ))
            for sku, qty in {"apple": 5, "pear": 3}.items():
                body = {"sku": sku, "qty": qty}
                opened = await inventory.post("/stock", json=body, headers=bearer(INVENTORY))
                assert opened.status_code == 200, opened.text
            yield Stack(sagas, accounts, inventory, orders)


async def test_each_service_gets_its_own_token_and_a_happy_order_completes(stack: Stack) -> None:
    view = await run(stack, "s-creds", order("o-1", 300, apple=2, pear=1))
    assert view["status"] == "completed", view
    assert [a["status_code"] for a in view["attempts"]] == [200] * 6
    listed = (await stack.accounts.get("/accounts")).json()["accounts"]
    assert {a["account_id"]: a["balance"] for a in listed} == {
        "acc-01": OPENING - 300,
        "acc-02": OPENING + 300,
    }
    await assert_invariants(stack)


async def test_the_participants_reads_need_the_read_token(stack: Stack) -> None:
    for client, path in [
        (stack.inventory, "/stock"),
        (stack.inventory, "/audit"),
        (stack.orders, "/orders"),
        (stack.orders, "/audit"),
    ]:
        for token in (None, INVENTORY, ORDERS, ACCOUNTS):
            headers = {"Authorization": f"Bearer {token}" if token else ""}
            refused = await client.get(path, headers=headers)
            assert (refused.status_code, refused.json()["error"]) == (401, "unauthorized")
        assert (await client.get(path)).status_code == 200  # the client's read token
