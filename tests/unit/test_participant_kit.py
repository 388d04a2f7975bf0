"""The participant kit's rules, on a small service of its own over a real SQLite file: a
`credit` that adds to a counter (compensation `uncredit`, settlement `void_credit`) and whose
refusals, failures and answers exercise every branch of `ParticipantService.perform`. The same
service also runs the whole participant contract, settlement checks included (the inventory
service has no settlement)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr

from repository_after.participant_kit import (
    Compensation,
    ParticipantService,
    Refusal,
    SqliteParticipantStore,
    Tx,
    canonical,
    participant_reads,
    participant_router,
)
from repository_after.participant_kit.contract import Contract, ContractAction, run_contract

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS handler_calls (n INTEGER)",
)


class CreditIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: StrictStr
    amount: StrictInt


def _value(tx: Tx, name: str) -> int:
    rows = tx.execute("SELECT value FROM counters WHERE name = ?", (name,))
    return int(rows[0][0]) if rows else 0


def credit(tx: Tx, key: str, body: dict[str, Any]) -> dict[str, Any]:
    tx.execute("INSERT INTO handler_calls (n) VALUES (1)")
    value = _value(tx, body["name"]) + body["amount"]
    tx.execute("INSERT OR REPLACE INTO counters (name, value) VALUES (?, ?)", (body["name"], value))
    if body["amount"] > 1000:  # refused AFTER a write: the refusal must undo it
        raise Refusal("too_much", f"{body['amount']} is too much")
    if body["amount"] == 666:
        raise RuntimeError("SELECT secret FROM internals -- a bug")
    if body["amount"] == 667:
        tx.execute("SELECT * FROM no_such_table")
    if body["amount"] == 668:
        return {"no": "status"}
    return {"status": "credited", "name": body["name"], "amount": body["amount"], "value": value}


def uncredit(tx: Tx, key: str, answer: dict[str, Any]) -> dict[str, Any]:
    value = _value(tx, answer["name"]) - answer["amount"]
    tx.execute("UPDATE counters SET value = ? WHERE name = ?", (value, answer["name"]))
    return {"status": "uncredited", "seen": answer, "value": value}


def build(path: Path, **options: Any) -> ParticipantService:
    """The counter service; `guard=` gives its compensation a guard, `tombstone=` its own
    tombstone bodies (`test_participant_kit_rules.py`)."""
    service = ParticipantService("counter", SqliteParticipantStore(path, schema=SCHEMA))
    guard = options.pop("guard", None)
    service.action(
        "credit",
        CreditIn,
        credit,
        compensation=Compensation("uncredit", uncredit, guard),
        settlement="void_credit",
        **options,
    )
    return service


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[ParticipantService]:
    svc = build(tmp_path / "counter.db")
    yield svc
    await svc.store.close()


async def value(service: ParticipantService, name: str = "c") -> int:
    return await service.store.read(lambda tx: _value(tx, name))


async def records(service: ParticipantService) -> list[tuple[Any, ...]]:
    return await service.store.read(
        lambda tx: tx.execute("SELECT operation, key, status_code FROM participant_records")
    )


async def handler_calls(service: ParticipantService) -> int:
    rows = await service.store.read(lambda tx: tx.execute("SELECT COUNT(*) FROM handler_calls"))
    return int(rows[0][0])


def body(amount: int, name: str = "c") -> CreditIn:
    return CreditIn(name=name, amount=amount)


async def test_an_action_applies_once_and_a_repeat_replays_the_same_bytes(service) -> None:
    first = await service.perform("credit", "k1", body(5))
    again = await service.perform("credit", "k1", body(5))
    assert (first.status_code, first.replayed) == (200, False)
    assert first.json() == {"status": "credited", "name": "c", "amount": 5, "value": 5}
    assert (again.status_code, again.body, again.replayed) == (200, first.body, True)
    assert await value(service) == 5


async def test_the_same_key_with_another_request_is_refused_and_changes_nothing(service) -> None:
    await service.perform("credit", "k1", body(5))
    other = await service.perform("credit", "k1", body(6))
    assert other.status_code == 422
    assert other.json()["error"] == "idempotency_key_reused"
    assert await value(service) == 5
    assert len(await records(service)) == 1


async def test_the_request_is_compared_by_its_canonical_json_not_its_key_order() -> None:
    assert canonical({"b": 1, "a": [2, {"y": 1, "x": 0}]}) == canonical(
        {"a": [2, {"x": 0, "y": 1}], "b": 1}
    )
    assert canonical({"a": 1}) != canonical({"a": 2})
    assert canonical(None) == "null"


async def test_a_refusal_undoes_the_handlers_writes_but_is_recorded_and_replayed(service) -> None:
    refused = await service.perform("credit", "k1", body(5000))
    assert refused.status_code == 409
    assert refused.json() == {"error": "too_much", "message": "5000 is too much"}
    assert await value(service) == 0  # the handler's write before raising was undone
    assert await handler_calls(service) == 0
    again = await service.perform("credit", "k1", body(5000))
    assert (again.status_code, again.body, again.replayed) == (409, refused.body, True)
    assert await handler_calls(service) == 0  # replayed: the handler did not run again


_INTERNAL = {"error": "internal_error", "message": "internal error"}
_STORAGE = {"error": "storage_unavailable", "message": "storage is unavailable; retry later"}


@pytest.mark.parametrize(
    ("amount", "status", "answer"),
    [(666, 500, _INTERNAL), (667, 503, _STORAGE), (668, 500, _INTERNAL)],
)
async def test_a_failing_handler_rolls_back_records_nothing_and_leaks_nothing(
    service, amount, status, answer
) -> None:
    failed = await service.perform("credit", "k1", body(amount))
    assert (failed.status_code, failed.json()) == (status, answer)
    text = failed.body.decode().lower()
    for leak in ("select", "traceback", "no_such_table", "secret", "sqlite"):
        assert leak not in text
    assert await value(service) == 0
    assert await records(service) == []
    # an unknown outcome: the same key is decided afresh, not replayed
    ok = await service.perform("credit", "k1", body(5))
    assert (ok.status_code, ok.replayed) == (200, False)


async def test_a_compensation_first_leaves_a_tombstone_that_refuses_the_late_action(
    service,
) -> None:
    tomb = await service.perform("uncredit", "k1", None)
    assert tomb.status_code == 200
    assert tomb.json() == {
        "operation": "uncredit",
        "transaction_id": "k1",
        "status": "nothing_to_compensate",
    }
    late = await service.perform("credit", "k1", body(5))
    assert late.status_code == 409
    assert late.json()["error"] == "transaction_compensated"
    assert await value(service) == 0
    assert [r[0] for r in await records(service)] == ["uncredit"]  # the refusal is not recorded


async def test_a_compensation_after_the_action_gets_its_recorded_answer_and_runs_once(
    service,
) -> None:
    applied = await service.perform("credit", "k1", body(5))
    await service.perform("credit", "k2", body(7))
    comp = await service.perform("uncredit", "k1", body(5))
    assert comp.json() == {"status": "uncredited", "seen": applied.json(), "value": 7}
    again = await service.perform("uncredit", "k1", body(5))
    assert (again.body, again.replayed) == (comp.body, True)
    assert await value(service) == 7


async def test_a_compensation_that_disagrees_with_the_action_is_refused(service) -> None:
    await service.perform("credit", "k1", body(5))
    wrong = await service.perform("uncredit", "k1", body(6))
    assert wrong.status_code == 422
    assert wrong.json()["error"] == "idempotency_key_reused"
    assert await value(service) == 5
    without_body = await service.perform("uncredit", "k1", None)
    assert without_body.json()["status"] == "uncredited"
    assert await value(service) == 0


async def test_a_compensation_of_a_refused_action_is_a_tombstone(service) -> None:
    await service.perform("credit", "k1", body(5000))
    comp = await service.perform("uncredit", "k1", body(5000))
    assert comp.json()["status"] == "nothing_to_compensate"
    assert await value(service) == 0


async def test_a_settlement_answers_already_applied_with_the_actions_fields(service) -> None:
    await service.perform("credit", "k1", body(5))
    settled = await service.perform("void_credit", "k1", body(5))
    assert settled.json() == {"status": "already_applied", "name": "c", "amount": 5, "value": 5}
    assert await value(service) == 5


async def test_a_settlement_first_voids_and_refuses_the_late_action(service) -> None:
    void = await service.perform("void_credit", "k1", body(5))
    assert void.json()["status"] == "voided"
    late = await service.perform("credit", "k1", body(5))
    assert (late.status_code, late.json()["error"]) == (409, "transaction_voided")
    assert await value(service) == 0


async def test_a_settlement_of_a_refused_action_voids_it(service) -> None:
    await service.perform("credit", "k1", body(5000))
    assert (await service.perform("void_credit", "k1", None)).json()["status"] == "voided"


async def test_answers_survive_a_restart_of_the_service(tmp_path: Path) -> None:
    first = build(tmp_path / "c.db")
    answer = await first.perform("credit", "k1", body(5))
    await first.store.close()
    second = build(tmp_path / "c.db")
    try:
        again = await second.perform("credit", "k1", body(5))
        assert (again.body, again.replayed) == (answer.body, True)
        assert await value(second) == 5
    finally:
        await second.store.close()


async def test_the_store_is_durable_wal_with_full_sync(tmp_path: Path) -> None:
    svc = build(tmp_path / "c.db")
    try:
        pragmas = await svc.store.read(
            lambda tx: [
                tx.execute(f"PRAGMA {p}")[0][0]
                for p in ("journal_mode", "synchronous", "busy_timeout")
            ]
        )
        assert pragmas == ["wal", 2, 10_000]  # synchronous=FULL is 2
    finally:
        await svc.store.close()


def test_operation_names_are_checked_when_registered(tmp_path: Path) -> None:
    svc = ParticipantService("x", SqliteParticipantStore(tmp_path / "x.db"))
    svc.action("credit", CreditIn, credit)
    with pytest.raises(ValueError, match="already registered"):
        svc.action("credit", CreditIn, credit)
    for bad in ("batch", "health", "Credit", "with space", ""):
        with pytest.raises(ValueError, match="not a valid operation name"):
            svc.action(bad, CreditIn, credit)
    with pytest.raises(ValueError, match="3 names"):
        svc.action("debit", CreditIn, credit, settlement="debit")
    with pytest.raises(ValueError, match="already registered"):
        svc.action("debit", CreditIn, credit, compensation=Compensation("credit", uncredit))
    assert "debit" not in svc.operations  # a refused registration registers nothing


@pytest.mark.parametrize("status", [200, 302, 399, 408, 429, 500, 503])
def test_a_refusal_is_a_definite_4xx(status) -> None:
    with pytest.raises(ValueError, match="definite 4xx"):
        Refusal("x", "y", status)
    for definite in (400, 401, 404, 499):
        refusal = Refusal("x", "y", definite)
        assert (refusal.http_status, refusal.code, refusal.message, str(refusal)) == (
            definite,
            "x",
            "y",
            "y",
        )


async def test_two_connections_on_one_file_apply_a_key_once(tmp_path: Path) -> None:
    """As two processes would: each store has its own connection; BEGIN IMMEDIATE serialises."""
    import asyncio

    a, b = build(tmp_path / "c.db"), build(tmp_path / "c.db")
    try:
        answers = await asyncio.gather(
            *(s.perform("credit", "k1", body(5)) for s in (a, b, a, b, a, b))
        )
        assert sorted(x.replayed for x in answers) == [False] + [True] * 5
        assert len({x.body for x in answers}) == 1
        assert await value(a) == 5
    finally:
        await a.store.close()
        await b.store.close()


def _app(service: ParticipantService, token: str | None = None) -> FastAPI:
    from pydantic import SecretStr

    app = FastAPI()
    app.include_router(participant_router(service, token=SecretStr(token) if token else None))
    app.include_router(participant_reads(service))  # its host's read guard: none here
    return app


@pytest.fixture
async def http(service) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://kit") as client:
        yield client


COUNTER = Contract(
    actions=(
        ContractAction(
            name="credit",
            body={"name": "c", "amount": 1},
            other_body={"name": "c", "amount": 2},
            invalid_body={"name": "c", "amount": 1.5},
            compensation="uncredit",
            compensated="uncredited",
            settlement="void_credit",
            refused_body={"name": "c", "amount": 5000},
        ),
    ),
)


async def test_a_kit_service_with_a_settlement_keeps_the_whole_contract(http) -> None:
    await run_contract(http, COUNTER)


async def test_the_batch_answers_carry_each_items_exact_bytes(http, service) -> None:
    single = await service.perform("credit", "k1", body(3))
    r = await http.post(
        "/batch",
        json={
            "operations": [
                {"operation": "credit", "transaction_id": "k1", "name": "c", "amount": 3},
                {"operation": "uncredit", "transaction_id": "k2"},
            ]
        },
    )
    assert r.status_code == 200
    assert r.content.startswith(b'{"results":[{"status_code":200,"body":' + single.body)
    results = r.json()["results"]
    assert results[0]["replayed"] is True
    assert results[1]["body"]["status"] == "nothing_to_compensate"


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"operations": []},
        {
            "operations": [{"operation": "credit", "transaction_id": "k", "name": "c", "amount": 1}]
            * 129
        },
        {"operations": [{"operation": "nope", "transaction_id": "k"}]},
        {
            "operations": [
                {"operation": "credit", "transaction_id": "bad key", "name": "c", "amount": 1}
            ]
        },
        {"operations": [{"operation": "credit", "transaction_id": "k", "name": "c"}]},
        {"operations": [{"operation": "credit", "transaction_id": "k"}]},
        {"operations": ["credit"]},
        {"operations": [], "extra": 1},
        [],
    ],
)
async def test_an_invalid_batch_is_refused_whole_and_runs_nothing(http, service, payload) -> None:
    ok_item = {"operation": "credit", "transaction_id": "fine", "name": "c", "amount": 1}
    if isinstance(payload, dict) and payload.get("operations"):
        payload = {"operations": [ok_item, *payload["operations"]]}
    r = await http.post("/batch", json=payload)
    assert r.status_code == 422
    assert r.json()["error"] == "invalid_request"
    assert await records(service) == []


async def test_an_unparseable_body_is_invalid_and_records_nothing(http, service) -> None:
    for path in ("/credit", "/batch"):
        r = await http.post(path, content=b'{"name": ', headers={"transaction-id": "k1"})
        assert (r.status_code, r.json()["error"]) == (422, "invalid_request")
    assert await records(service) == []


async def test_health_answers_when_the_store_does(http, service) -> None:
    r = await http.get("/health")
    assert (r.status_code, r.json()) == (200, {"status": "ok", "service": "counter"})
    await service.store.close()
    r = await http.get("/health")
    assert r.status_code == 503


async def test_a_replay_over_http_carries_the_header_and_the_stored_bytes(http) -> None:
    headers = {"transaction-id": "k1"}
    first = await http.post("/credit", json={"amount": 4, "name": "c"}, headers=headers)
    again = await http.post("/credit", content=b'{"name":"c","amount":4}', headers=headers)
    assert first.headers.get("idempotent-replayed") is None
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert orjson.loads(first.content)["value"] == 4


def test_the_store_refuses_a_bad_schema_and_closes(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="sqlite"):
        SqliteParticipantStore(tmp_path / "x.db", schema=("CREATE TABLE oops (",))
    # all or nothing: not even the kit's own table was left behind, and the file is free
    conn = sqlite3.connect(tmp_path / "x.db", timeout=0)
    assert conn.execute("SELECT name FROM sqlite_master").fetchall() == []
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("ROLLBACK")
    conn.close()
