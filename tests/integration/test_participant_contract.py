"""The participant contract (`participant_kit.contract`) run against the participants: the
inventory and orders services (on the kit; with and without a service token) and the account
service (not
on the kit yet: same words, so the same checks pass unchanged). And the contract bites: a
participant that forgets its answers, or ignores its token, fails it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from repository_after.participant_kit.contract import (
    CHECKS,
    PER_KEY,
    Contract,
    ContractAction,
    ContractViolation,
    check_replay,
    check_token_required,
    run_contract,
)
from repository_after.services.inventory_http import create_inventory_app
from repository_after.services.orders_http import create_orders_app
from tests.conftest import accounts_settings, asgi_client

TOKEN = "inv3ntory-t0ken"

INVENTORY = Contract(
    actions=(
        ContractAction(
            name="reserve",
            body={"lines": [{"sku": "widget", "qty": 1}, {"sku": "gadget", "qty": 2}]},
            other_body={"lines": [{"sku": "widget", "qty": 2}]},
            invalid_body={"lines": [{"sku": "widget", "qty": 0}]},
            compensation="release",
            compensated="released",
            refused_body={
                "lines": [{"sku": "widget", "qty": 1}, {"sku": "never-stocked", "qty": 1}]
            },
        ),
    ),
)

#: Every key creates its own order (`PER_KEY`); a second create of a taken id is refused.
TAKEN = "order-taken"
_ORDER = {
    "customer": "acc-01",
    "merchant": "acc-02",
    "lines": [{"sku": "widget", "qty": 1}],
    "total": 500,
}
ORDERS = Contract(
    actions=(
        ContractAction(
            name="create",
            body={"order_id": PER_KEY, **_ORDER},
            other_body={"order_id": PER_KEY, **_ORDER, "total": 501},
            invalid_body={"order_id": PER_KEY, **_ORDER, "total": 0},
            compensation="cancel",
            compensated="cancelled",
            refused_body={"order_id": TAKEN, **_ORDER},
        ),
    ),
)

ACCOUNTS = Contract(
    actions=(
        ContractAction(
            name="debit",
            body={"account_id": "acc-01", "amount": 100},
            other_body={"account_id": "acc-01", "amount": 101},
            invalid_body={"account_id": "acc-01", "amount": "100"},
            compensation="compensate_debit",
            compensated="compensated",
            refused_body={"account_id": "acc-01", "amount": 10**12},
        ),
        ContractAction(
            name="credit",
            body={"account_id": "acc-02", "amount": 100},
            other_body={"account_id": "acc-02", "amount": 99},
            invalid_body={"account_id": "acc-02", "amount": 0},
            settlement="void_credit",
            refused_body={"account_id": "no-such-account", "amount": 100},
        ),
    ),
    token=TOKEN,
)


async def _inventory(tmp_path: Path, token: str | None) -> AsyncIterator[httpx.AsyncClient]:
    app = create_inventory_app(tmp_path / "inventory.db", token=token)
    auth = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            for sku in ("widget", "gadget"):
                r = await client.post("/stock", json={"sku": sku, "qty": 10_000}, headers=auth)
                assert r.status_code == 200, r.text
            yield client
            audit = (await client.get("/audit")).json()
            assert audit["ok"], audit["violations"]


@pytest.fixture
async def inventory(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _inventory(tmp_path, None):
        yield client


@pytest.fixture
async def guarded_inventory(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _inventory(tmp_path, TOKEN):
        yield client


async def _orders(tmp_path: Path, token: str | None) -> AsyncIterator[httpx.AsyncClient]:
    app = create_orders_app(tmp_path / "orders.db", token=token)
    auth = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            taken = await client.post(
                "/create",
                json={"order_id": TAKEN, **_ORDER},
                headers={**auth, "transaction-id": "setup:create"},
            )
            assert taken.status_code == 200, taken.text
            yield client
            audit = (await client.get("/audit")).json()
            assert audit["ok"], audit["violations"]


@pytest.fixture
async def orders(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _orders(tmp_path, None):
        yield client


@pytest.fixture
async def guarded_orders(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for client in _orders(tmp_path, TOKEN):
        yield client


@pytest.fixture
async def accounts(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = accounts_settings(
        tmp_path, demo_accounts=2, demo_balance=1_000_000, service_token=TOKEN, admin_token="adm"
    )
    async for client in asgi_client(settings):
        yield client


@pytest.mark.parametrize("check", CHECKS)
async def test_the_inventory_service_keeps_the_participant_contract(inventory, check) -> None:
    await CHECKS[check](inventory, INVENTORY)


@pytest.mark.parametrize("check", CHECKS)
async def test_the_inventory_service_keeps_the_contract_with_a_service_token(
    guarded_inventory, check
) -> None:
    await CHECKS[check](guarded_inventory, Contract(INVENTORY.actions, token=TOKEN))


@pytest.mark.parametrize("check", CHECKS)
async def test_the_orders_service_keeps_the_participant_contract(orders, check) -> None:
    await CHECKS[check](orders, ORDERS)


@pytest.mark.parametrize("check", CHECKS)
async def test_the_orders_service_keeps_the_contract_with_a_service_token(
    guarded_orders, check
) -> None:
    await CHECKS[check](guarded_orders, Contract(ORDERS.actions, token=TOKEN))


@pytest.mark.parametrize("check", CHECKS)
async def test_the_account_service_keeps_the_participant_contract(accounts, check) -> None:
    await CHECKS[check](accounts, ACCOUNTS)


async def test_the_whole_contract_runs_in_one_go_against_one_service(inventory) -> None:
    await run_contract(inventory, INVENTORY)


def _forgetful_app() -> FastAPI:
    """A participant that applies every call afresh: no record, no replay."""
    app = FastAPI()
    counter = {"n": 0}

    @app.post("/reserve")
    async def reserve(request: Request) -> Response:
        counter["n"] += 1
        return Response(
            f'{{"status":"reserved","n":{counter["n"]}}}', media_type="application/json"
        )

    return app


async def test_a_participant_that_forgets_its_answers_fails_the_replay_check() -> None:
    transport = httpx.ASGITransport(app=_forgetful_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://p") as client:
        with pytest.raises(ContractViolation, match="replays"):
            await check_replay(client, INVENTORY)


async def test_a_participant_that_ignores_its_token_fails_the_token_check(inventory) -> None:
    # the inventory fixture has no token set, so it lets an unauthenticated call through
    with pytest.raises(ContractViolation, match="without the token is 401"):
        await check_token_required(inventory, Contract(INVENTORY.actions, token=TOKEN))
