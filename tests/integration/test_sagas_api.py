"""`/sagas/{type}`: any registered saga type over HTTP, the transfer first.

The orchestrator app (ASGITransport) calls an account service served by uvicorn on loopback in
the test's event loop (real HTTP, real SQLite files). What is checked: the body is the type's
parameters, validated by its model and rules before anything is logged; the answer and the
replay are `POST /transfers`'; a saga is found only under its own type; an unknown type is a 404
and logs nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from repository_after.adapters.sqlite_saga_log import SqliteSagaLog
from repository_after.domain.saga import EventKind, SagaEvent
from tests.integration.observability_support import (
    orchestrator_client,
    orchestrator_settings,
    served,
    settings,
)

TRANSFER = {"source": "acc-01", "target": "acc-02", "amount": 250}


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with served(settings(tmp_path, "accounts", role="accounts")) as accounts_url:  # noqa: SIM117 (the second needs the first's URL)
        async with orchestrator_client(orchestrator_settings(tmp_path, accounts_url)) as client:
            yield client


async def sagas_logged(client: httpx.AsyncClient) -> int:
    listed = await client.get("/transfers", params={"limit": 1000})
    return len(listed.json()["transfers"])


async def test_a_transfer_started_as_a_saga_is_the_same_transfer(
    client: httpx.AsyncClient,
) -> None:
    started = await client.post("/sagas/transfer", json=TRANSFER, headers={"transaction-id": "s-1"})
    assert started.status_code == 200
    view = started.json()
    assert (view["saga"], view["transaction_id"], view["status"]) == (
        "transfer",
        "s-1",
        "completed",
    )
    assert {k: view[k] for k in TRANSFER} == TRANSFER
    assert [(a["step"], a["outcome"]) for a in view["attempts"]] == [
        ("debit", "succeeded"),
        ("credit", "succeeded"),
    ]
    assert started.headers["Location"] == "/sagas/transfer/s-1"
    assert "Idempotent-Replayed" not in started.headers
    again = await client.post("/sagas/transfer", json=TRANSFER, headers={"transaction-id": "s-1"})
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (200, "true")
    read = (await client.get("/sagas/transfer/s-1")).json()
    assert read == (await client.get("/transfers/s-1")).json()
    assert read["status"] == "completed"


@pytest.mark.parametrize(
    ("body", "code", "error"),
    [
        ({**TRANSFER, "amount": "250"}, 422, "invalid_request"),  # strict: money is an integer
        ({**TRANSFER, "amount": 0}, 422, "invalid_request"),
        ({"source": "acc-01", "target": "acc-02"}, 422, "invalid_request"),
        ({**TRANSFER, "memo": "x"}, 422, "invalid_request"),  # no unknown fields
        ({**TRANSFER, "target": "acc-01"}, 422, "same_account"),  # the type's own rule
        ([TRANSFER], 422, "invalid_request"),  # not an object
    ],
    ids=["amount-text", "amount-zero", "missing", "extra", "same-account", "list"],
)
async def test_bad_parameters_are_refused_before_anything_is_logged(
    client: httpx.AsyncClient, body: object, code: int, error: str
) -> None:
    refused = await client.post("/sagas/transfer", json=body, headers={"transaction-id": "s-2"})
    assert (refused.status_code, refused.json()["error"]) == (code, error)
    assert "Traceback" not in refused.text
    assert await sagas_logged(client) == 0
    assert (await client.get("/sagas/transfer/s-2")).status_code == 404


async def test_an_invalid_field_is_named_without_echoing_the_input(
    client: httpx.AsyncClient,
) -> None:
    refused = await client.post("/sagas/transfer", json={**TRANSFER, "amount": "<script>"})
    details = refused.json()["details"]
    assert [d["loc"] for d in details] == [["body", "amount"]]
    assert "<script>" not in refused.text


async def test_an_unknown_saga_type_is_404_and_logs_nothing(client: httpx.AsyncClient) -> None:
    unknown = await client.post("/sagas/refund", json=TRANSFER, headers={"transaction-id": "s-3"})
    assert (unknown.status_code, unknown.json()["error"]) == (404, "saga_type_not_found")
    assert unknown.json()["message"] == "no saga type 'refund'"
    assert await sagas_logged(client) == 0
    malformed = await client.post("/sagas/Not-A-Type", json=TRANSFER)
    assert (malformed.status_code, malformed.json()["error"]) == (422, "invalid_request")


async def test_a_saga_is_found_and_operated_only_under_its_own_type(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/sagas/transfer", json=TRANSFER, headers={"transaction-id": "s-4"})
    for method, path in [
        ("GET", "/sagas/order/s-4"),
        ("POST", "/sagas/order/s-4/retry"),
        ("POST", "/sagas/order/s-4/resolve"),
        ("GET", "/sagas/transfer/s-none"),
    ]:
        reply = await client.request(method, path)
        assert (reply.status_code, reply.json()["error"]) == (404, "saga_not_found"), path
    assert (await client.get("/sagas/transfer/s-4")).json()["operator_actions"] == []
    # the generic operator routes act under the right type, with the transfer's own rules
    refused = await client.post("/sagas/transfer/s-4/retry")
    assert (refused.status_code, refused.json()["error"]) == (409, "invalid_transition")


ORDER = {
    "order_id": "o-1",
    "customer": "acc-01",
    "merchant": "acc-02",
    "lines": [{"sku": "apple", "qty": 1}],
    "total": 100,
}


async def test_a_saga_id_too_long_for_its_types_keys_is_refused_before_anything_is_logged(
    client: httpx.AsyncClient,
) -> None:
    """A participant accepts keys of at most 128 characters, and the order keys most steps
    `<id>:<step>` (`:confirm`, `:reserve`: 8 more): its ids may have 120."""
    too_long = "o" * 121
    refused = await client.post("/sagas/order", json=ORDER, headers={"transaction-id": too_long})
    assert (refused.status_code, refused.json()["error"]) == (422, "transaction_id_too_long")
    assert refused.json()["message"] == (
        "a saga of type 'order' takes a transaction id of at most 120 characters: its keys add "
        "up to 8 to it, and a participant accepts keys of at most 128"
    )
    assert too_long not in refused.text
    assert await sagas_logged(client) == 0
    # the longest id that fits is run, and every participant takes its keys (no stock here:
    # the inventory refuses the reservation itself, not its key)
    longest = "o" * 120
    fits = await client.post("/sagas/order", json=ORDER, headers={"transaction-id": longest})
    assert fits.status_code == 200, fits.text
    assert [(a["operation"], a["result"] or a["error"]) for a in fits.json()["attempts"]] == [
        ("create", "created"),
        ("reserve", "out_of_stock"),
        ("cancel", "cancelled"),
    ]
    # a transfer keys every call by its id: any id the header allows fits
    full = await client.post(
        "/sagas/transfer", json=TRANSFER, headers={"transaction-id": "t" * 128}
    )
    assert (full.status_code, full.json()["status"]) == (200, "completed")


async def test_a_saga_another_server_started_under_another_shape_is_a_409_not_a_500(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """A saga written to the shared log after this server's start-up check, by a server whose
    transfer has another shape: reading or operating it here says why, as JSON, never a 500."""
    log = SqliteSagaLog(tmp_path / "sagas.db")
    try:
        await log.create(
            saga_id="s-other",
            definition="transfer",
            definition_version=1,
            definition_hash="0123456789abcdef",
            params={"source": "acc-01", "target": "acc-02", "amount": 5},
            events=[SagaEvent(EventKind.STARTED, at="2026-01-01T00:00:00+00:00")],
            status="completed",
        )
    finally:
        await log.close()
    for method, path in [
        ("GET", "/sagas/transfer/s-other"),
        ("GET", "/transfers/s-other"),
        ("POST", "/sagas/transfer/s-other/retry"),
    ]:
        reply = await client.request(method, path)
        assert (reply.status_code, reply.json()["error"]) == (409, "definition_changed"), path
        assert "0123456789abcdef" in reply.json()["message"], path


async def test_a_running_saga_of_a_version_this_server_lacks_is_never_answered_as_missing(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    """A saga a newer server started (version 2 of the transfer, in flight): reading it, operating
    it, or replaying its request here is a 409 that says why, never a 404 that would tell the
    client its transfer does not exist (an unknown outcome read as "did not happen")."""
    params = {"source": "acc-01", "target": "acc-02", "amount": 5}
    log = SqliteSagaLog(tmp_path / "sagas.db")
    try:
        await log.create(
            saga_id="s-v2",
            definition="transfer",
            definition_version=2,
            definition_hash="fedcba9876543210",
            params=params,
            events=[SagaEvent(EventKind.STARTED, at="2026-01-01T00:00:00+00:00")],
            status="debiting",
        )
    finally:
        await log.close()
    replay = {"json": params, "headers": {"transaction-id": "s-v2"}}
    for method, path, extra in [
        ("GET", "/sagas/transfer/s-v2", {}),
        ("GET", "/transfers/s-v2", {}),
        ("POST", "/sagas/transfer/s-v2/retry", {}),
        ("POST", "/transfers", replay),
        ("POST", "/sagas/transfer", replay),
    ]:
        reply = await client.request(method, path, **extra)
        assert (reply.status_code, reply.json()["error"]) == (409, "version_not_registered"), path
        assert reply.json()["message"] == (
            "saga s-v2: saga type 'transfer' version 2 is not registered on this server (a server "
            "that registers it drives this saga)"
        ), path
