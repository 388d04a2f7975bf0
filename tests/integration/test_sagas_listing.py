"""`GET /sagas/{type}`, `GET /sagas` and `GET /transfers`: sagas listed by type and status, newest
first, and counted by type and status (every registered type and status, zeros included).

The orchestrator app through ASGITransport, its account service down (nothing listens on the
port), so its worker never starts and the sagas written straight into its log (distinct start
times, created in an order unlike their age) stay exactly as written.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from repository_after.domain.saga import EventKind, SagaEvent
from repository_after.entrypoints.service_process import free_port
from repository_after.service_layer.saga_ports import SagaLog
from tests.integration.observability_support import orchestrator_client, orchestrator_settings

#: The engine's statuses after a type's steps, in the order a saga meets them.
AFTER_STEPS = ["compensating", "completed", "compensated", "rejected", "failed_needs_attention"]
AFTER_STEPS += ["resolved"]
ORDER_STATUSES = ["started", "creating", "reserving", "charging", "paying", "selling"]
ORDER_STATUSES += ["confirming", *AFTER_STEPS]
TRANSFER_STATUSES = ["started", "debiting", "crediting", *AFTER_STEPS]
CLASSES_STATUSES = ["started", "assigning", "enrolling", *AFTER_STEPS]
ORDER = {"order_id": "", "customer": "acc-01", "merchant": "acc-02", "lines": [], "total": 300}
TRANSFER = {"source": "acc-01", "target": "acc-02", "amount": 250}
#: (id, type, second it started at, status), written in this order.
SAGAS = [
    ("o1", "order", 1, "completed"),
    ("t5", "transfer", 5, "debiting"),
    ("t2", "transfer", 2, "completed"),
    ("o3", "order", 3, "reserving"),
    ("t4", "transfer", 4, "failed_needs_attention"),
    ("o6", "order", 6, "completed"),
]


async def write(log: SagaLog, sagas: list[tuple[str, str, int, str]]) -> None:
    for saga_id, saga_type, second, status in sagas:
        params = {**ORDER, "order_id": saga_id} if saga_type == "order" else TRANSFER
        await log.create(
            saga_id=saga_id,
            definition=saga_type,
            definition_version=1,
            definition_hash="h",
            params=params,
            events=[SagaEvent(EventKind.STARTED, at=f"2026-01-01T00:00:{second:02d}+00:00")],
            status=status,
        )


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    down = f"http://127.0.0.1:{free_port()}"
    settings = orchestrator_settings(tmp_path, down)
    async with orchestrator_client(settings, wait_recovery=False) as client:
        await write(client.app.state.container.orchestrator.log, SAGAS)  # type: ignore[attr-defined]
        yield client


async def ok(client: httpx.AsyncClient, path: str, **params: Any) -> dict[str, Any]:
    reply = await client.get(path, params=params)
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def ids(listing: dict[str, Any], key: str = "sagas") -> list[str]:
    return [s["transaction_id"] for s in listing[key]]


async def test_a_types_listing_holds_its_sagas_newest_first_and_its_counts(
    client: httpx.AsyncClient,
) -> None:
    orders = await ok(client, "/sagas/order")
    assert orders["saga"] == "order"
    assert ids(orders) == ["o6", "o3", "o1"]
    o3 = orders["sagas"][1]
    assert o3 == {
        "transaction_id": "o3",
        "saga": "order",
        "version": 1,
        **ORDER,
        "order_id": "o3",
        "status": "reserving",
        "created_at": "2026-01-01T00:00:03+00:00",
        "updated_at": "2026-01-01T00:00:03+00:00",
    }
    zeros = dict.fromkeys(ORDER_STATUSES, 0)
    assert orders["counts"] == {**zeros, "completed": 2, "reserving": 1}
    assert list(orders["counts"]) == ORDER_STATUSES  # in the order a saga meets them
    assert ids(await ok(client, "/sagas/order", status="completed")) == ["o6", "o1"]
    assert ids(await ok(client, "/sagas/order", limit=1)) == ["o6"]
    assert ids(await ok(client, "/sagas/order", status="completed", limit=1)) == ["o6"]
    assert ids(await ok(client, "/sagas/order", status="charging")) == []
    transfers = await ok(client, "/sagas/transfer", status="debiting")
    assert ids(transfers) == ["t5"]
    assert transfers["counts"]["failed_needs_attention"] == 1


async def test_every_type_is_listed_together_and_counted_by_type_and_status(
    client: httpx.AsyncClient,
) -> None:
    every = await ok(client, "/sagas")
    assert ids(every) == ["o6", "t5", "t4", "o3", "t2", "o1"]
    types = ["order", "transfer", "transfer", "order", "transfer", "order"]
    assert [s["saga"] for s in every["sagas"]] == types
    assert every["counts"] == {
        "classes": dict.fromkeys(CLASSES_STATUSES, 0),  # registered, none started
        "order": {**dict.fromkeys(ORDER_STATUSES, 0), "completed": 2, "reserving": 1},
        "transfer": {
            **dict.fromkeys(TRANSFER_STATUSES, 0),
            "completed": 1,
            "debiting": 1,
            "failed_needs_attention": 1,
        },
    }
    parked = await ok(client, "/sagas", status="failed_needs_attention")
    assert ids(parked) == ["t4"]
    assert ids(await ok(client, "/sagas", status="reserving")) == ["o3"]  # an order's status
    assert ids(await ok(client, "/sagas", status="completed", limit=2)) == ["o6", "t2"]


async def test_a_type_no_longer_registered_still_counts(client: httpx.AsyncClient) -> None:
    """Settled sagas of a type this server no longer runs stay in the log: the counts still add
    up to every saga it holds."""
    log = client.app.state.container.orchestrator.log  # type: ignore[attr-defined]
    await write(log, [("x7", "legacy", 7, "completed")])
    counts = (await ok(client, "/sagas"))["counts"]
    assert counts["legacy"] == {"completed": 1}
    assert sum(n for by_status in counts.values() for n in by_status.values()) == 7
    assert (await client.get("/sagas/legacy")).status_code == 404  # not a type it runs


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/sagas/order", {"status": "debiting"}),  # a transfer's status, not an order's
        ("/sagas/transfer", {"status": "reserving"}),
        ("/sagas", {"status": "no_such_status"}),
        ("/sagas/order", {"status": "a\x00b"}),
        ("/sagas/order", {"status": "x" * 200}),
        ("/sagas/order", {"limit": 0}),
        ("/sagas", {"limit": 1001}),
        ("/sagas/Not-A-Type", {}),
    ],
)
async def test_a_filter_no_saga_of_the_type_can_match_is_422(
    client: httpx.AsyncClient, path: str, params: dict[str, Any]
) -> None:
    reply = await client.get(path, params=params)
    assert (reply.status_code, reply.json()["error"]) == (422, "invalid_request"), reply.text


async def test_the_422_names_the_parameter_and_the_statuses_of_the_type(
    client: httpx.AsyncClient,
) -> None:
    reply = await client.get("/sagas/transfer", params={"status": "reserving"})
    [detail] = reply.json()["details"]
    assert detail["loc"] == ["query", "status"]
    assert detail["msg"] == "Input should be one of " + ", ".join(
        repr(s) for s in TRANSFER_STATUSES
    )


async def test_an_unknown_type_is_a_404(client: httpx.AsyncClient) -> None:
    reply = await client.get("/sagas/none_such")
    assert reply.status_code == 404
    assert reply.json() == {
        "error": "saga_type_not_found",
        "message": "no saga type 'none_such'",
    }


async def test_transfers_lists_only_transfers_by_any_of_their_statuses(
    client: httpx.AsyncClient,
) -> None:
    """`/transfers` stays the transfer's own route: no order in its list or counts; its
    `?state=` takes a transfer's running statuses too (`debiting` was refused before)."""
    listed = await ok(client, "/transfers")
    assert ids(listed, "transfers") == ["t5", "t4", "t2"]
    assert {t["saga"] for t in listed["transfers"]} == {"transfer"}
    assert listed["transfers"][0]["source"] == "acc-01"
    assert listed["counts"] == {"completed": 1, "debiting": 1, "failed_needs_attention": 1}
    assert ids(await ok(client, "/transfers", state="debiting"), "transfers") == ["t5"]
    refused = await client.get("/transfers", params={"state": "reserving"})
    assert refused.status_code == 422
    assert refused.json()["details"][0]["loc"] == ["query", "state"]
