"""The A → B → C participants (`services/abc.py`) are kit services like any other: the
participant contract passes against one, its switch and its reads are guarded by their tokens,
and the switch's refusal is a recorded business refusal (replayed after the switch is off)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from repository_after.participant_kit.contract import Contract, ContractAction, run_contract
from repository_after.services.abc import open_abc
from repository_after.services.abc_http import create_abc_app
from repository_after.services.switched import Journal

TOKEN, READ_TOKEN = "abc-s3rvice", "abc-r3ad"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
BODY = {"ref": "r-1", "amount": 100}

CONTRACT = Contract(
    actions=(
        ContractAction(
            name="do",
            body=BODY,
            other_body={"ref": "r-1", "amount": 101},
            invalid_body={"ref": "r-1", "amount": 0},
            compensation="undo",
            compensated="undone",
        ),
    ),
    token=TOKEN,
)


@pytest.fixture
async def service_b(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_abc_app(
        open_abc("B", tmp_path / "b.db", Journal()), token=TOKEN, read_token=READ_TOKEN
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            yield client


async def _do(client: httpx.AsyncClient, key: str) -> httpx.Response:
    return await client.post("/do", json=BODY, headers={**AUTH, "transaction-id": key})


async def test_an_abc_service_keeps_the_participant_contract(service_b: httpx.AsyncClient) -> None:
    await run_contract(service_b, CONTRACT)


async def test_the_switch_and_the_reads_need_their_tokens(service_b: httpx.AsyncClient) -> None:
    refuse = {"fault": "refuse", "times": None}
    for headers in ({}, READ):
        denied = await service_b.put("/switch", json=refuse, headers=headers)
        assert (denied.status_code, denied.json()["error"]) == (401, "unauthorized")
    assert (await _do(service_b, "s-1:b")).status_code == 200  # the switch did not change
    for path in ("/entries", "/calls"):
        assert (await service_b.get(path)).status_code == 401
        assert (await service_b.get(path, headers=AUTH)).status_code == 401
    (entry,) = (await service_b.get("/entries", headers=READ)).json()["entries"]
    assert entry == {"entry": "s-1:b", **BODY}
    calls = (await service_b.get("/calls", headers=READ)).json()["calls"]
    assert calls == [{"seq": 1, "key": "s-1:b", "call": "B.do 200 done"}]


async def test_a_switched_refusal_is_recorded_and_hits_only_its_calls(
    service_b: httpx.AsyncClient,
) -> None:
    switched = await service_b.put("/switch", json={"fault": "refuse", "times": 1}, headers=AUTH)
    assert switched.status_code == 200
    refused = await _do(service_b, "s-1:b")
    assert (refused.status_code, refused.json()["error"]) == (409, "refused")
    assert (await _do(service_b, "s-2:b")).status_code == 200  # `times` 1: the next applies
    again = await _do(service_b, "s-1:b")  # the switch is spent: the kit's record answers
    assert (again.status_code, again.content) == (409, refused.content)
    assert again.headers["idempotent-replayed"] == "true"
    entries = (await service_b.get("/entries", headers=READ)).json()["entries"]
    assert [e["entry"] for e in entries] == ["s-2:b"]  # the refused call wrote nothing
