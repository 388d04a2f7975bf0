"""The kit's fault injection (`participant_kit.faults`, rule (f) of `ParticipantService`), on the
counter service of `test_participant_kit` over a real SQLite file: `before` changes nothing,
`after` applies once and a retry replays, a compensation after a lost answer undoes it once, a
batch is answered item by item, and the same seed makes the same decisions."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from repository_after.participant_kit import ParticipantFaults, ParticipantService
from repository_after.participant_kit.faults import OperationFaults
from repository_after.service_layer.faults import FaultMode, FaultPoint
from tests.unit.test_participant_kit import _app, body, handler_calls, records, value

# The counter service (a fixture), used under its own name.
from tests.unit.test_participant_kit import service as service


def faults(mode: str, rate: float = 1.0, *ops: str, seed: int | None = 1) -> ParticipantFaults:
    return ParticipantFaults(operations=list(ops or ("credit",)), rate=rate, mode=mode, seed=seed)


def off() -> ParticipantFaults:
    return faults("before", 0.0)


async def test_before_answers_500_and_neither_applies_nor_records(service) -> None:
    service.inject_faults(faults("before"))
    for _ in range(3):
        failed = await service.perform("credit", "k1", body(5))
        assert failed.status_code == 500
        assert failed.json() == {
            "error": "injected_fault",
            "message": "injected fault before the credit",
        }
    assert (await value(service), await handler_calls(service), await records(service)) == (
        0,
        0,
        [],
    )
    service.inject_faults(off())
    applied = await service.perform("credit", "k1", body(5))
    assert (applied.status_code, applied.replayed, await value(service)) == (200, False, 5)


async def test_after_applies_once_and_a_retry_replays_the_first_answer(service) -> None:
    service.inject_faults(faults("after"))
    for _ in range(3):  # the answer is lost every time; the credit lands once
        lost = await service.perform("credit", "k1", body(5))
        assert (lost.status_code, lost.json()) == (
            500,
            {
                "error": "injected_fault",
                "message": "injected fault: the answer was lost after the request was processed",
            },
        )
    assert (await value(service), await handler_calls(service)) == (5, 1)
    assert await records(service) == [("credit", "k1", 200)]
    service.inject_faults(off())
    retry = await service.perform("credit", "k1", body(5))
    assert (retry.status_code, retry.replayed) == (200, True)
    assert retry.json() == {"status": "credited", "name": "c", "amount": 5, "value": 5}
    assert await value(service) == 5


async def test_a_compensation_after_a_lost_answer_undoes_the_action_once(service) -> None:
    service.inject_faults(faults("after"))
    assert (await service.perform("credit", "k1", body(7))).status_code == 500
    service.inject_faults(faults("after", 1.0, "uncredit"))
    for _ in range(2):  # the compensation's own answer is lost too; it still runs once
        assert (await service.perform("uncredit", "k1", None)).status_code == 500
    service.inject_faults(off())
    undone = await service.perform("uncredit", "k1", None)
    assert (undone.replayed, undone.json()["status"]) == (True, "uncredited")
    assert await value(service) == 0
    late = await service.perform("credit", "k1", body(7))
    assert late.json()["status"] == "credited"  # the action's recorded answer, not a new credit
    assert await value(service) == 0


async def test_a_compensation_after_a_fault_before_leaves_the_tombstone(service) -> None:
    service.inject_faults(faults("before"))
    assert (await service.perform("credit", "k1", body(7))).status_code == 500
    tombstone = await service.perform("uncredit", "k1", None)
    assert tombstone.json()["status"] == "nothing_to_compensate"
    service.inject_faults(off())
    late = await service.perform("credit", "k1", body(7))
    assert (late.status_code, late.json()["error"]) == (409, "transaction_compensated")
    assert await value(service) == 0


async def test_a_call_turned_away_keeps_its_own_answer_under_after(service) -> None:
    await service.perform("credit", "k1", body(5))
    service.inject_faults(faults("after"))
    reused = await service.perform("credit", "k1", body(6))
    assert (reused.status_code, reused.json()["error"]) == (422, "idempotency_key_reused")
    refused = await service.perform("credit", "k2", body(5000))  # a recorded refusal commits
    assert (refused.status_code, refused.json()["error"]) == (500, "injected_fault")
    service.inject_faults(off())
    replay = await service.perform("credit", "k2", body(5000))
    assert (replay.status_code, replay.json()["error"]) == (409, "too_much")


async def test_only_the_named_operations_fail(service) -> None:
    service.inject_faults(faults("before", 1.0, "void_credit"))
    assert (await service.perform("credit", "k1", body(5))).status_code == 200
    assert (await service.perform("void_credit", "k1", None)).status_code == 500
    assert service.faults.view()["operations"] == {"void_credit": {"before": 1, "after": 0}}


def test_an_operation_the_service_lacks_is_refused_and_changes_nothing(service) -> None:
    service.inject_faults(faults("before", 1.0, "credit"))
    it_has = r"\(it has: credit, uncredit, void_credit\)"
    with pytest.raises(ValueError, match=rf"^counter has no operation 'refund' {it_has}$"):
        service.inject_faults(faults("after", 1.0, "credit", "refund"))
    assert service.faults.view()["mode"] == "before"


def test_the_settings_are_checked() -> None:
    with pytest.raises(ValidationError):
        ParticipantFaults(operations=["credit"], rate=1.5)
    with pytest.raises(ValidationError):
        ParticipantFaults(operations=[], rate=0.1)
    with pytest.raises(ValidationError):
        ParticipantFaults(operations=["credit"], rate=0.1, mode="sometimes")


def decisions(seed: int | None, calls: list[str]) -> list[tuple[str, FaultPoint]]:
    plan = OperationFaults("svc")
    settings = ParticipantFaults(operations=["a", "b"], rate=0.3, mode=FaultMode.MIXED, seed=seed)
    plan.configure(settings, known=["a", "b"])
    return [(op, plan.draw(op, f"k{i}")) for i, op in enumerate(calls)]


def test_the_same_seed_makes_the_same_decisions_per_operation() -> None:
    calls = ["a"] * 200
    first = decisions(7, calls)
    assert first == decisions(7, calls)
    assert first != decisions(8, calls)
    points = {point for _, point in first}
    assert points == {FaultPoint.NONE, FaultPoint.BEFORE, FaultPoint.AFTER}
    # Calls to another operation in between do not move operation a's decisions.
    mixed = decisions(7, [op for _ in range(200) for op in ("a", "b")])
    assert [p for op, p in mixed if op == "a"] == [p for _, p in first]
    assert [p for op, p in mixed if op == "b"] != [p for _, p in first]


@pytest.fixture
async def http(service: ParticipantService) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://kit") as client:
        yield client


def view(rate: float, mode: str, operations: dict[str, Any]) -> dict[str, Any]:
    """What `GET /faults` answers for the counter service (no seed)."""
    return {
        "service": "counter",
        "rate": rate,
        "mode": mode,
        "seed": None,
        "operations": operations,
    }


async def test_a_batch_is_answered_item_by_item_and_faults_are_counted(http, service) -> None:
    service.inject_faults(faults("after", 1.0, "credit", seed=None))
    items = [
        {"operation": "credit", "transaction_id": "b1", "name": "c", "amount": 2},
        {"operation": "void_credit", "transaction_id": "b2"},
    ]
    batch = await http.post("/batch", json={"operations": items})
    assert batch.status_code == 200
    lost, voided = batch.json()["results"]
    assert (lost["status_code"], lost["body"]["error"]) == (500, "injected_fault")
    assert (voided["status_code"], voided["body"]["status"]) == (200, "voided")
    assert await value(service) == 2  # `after`: the batched credit landed
    counted = {"credit": {"before": 0, "after": 1}}
    assert (await http.get("/faults")).json() == view(1.0, "after", counted)


async def test_faults_reads_none_when_nothing_is_configured(http) -> None:
    assert (await http.get("/faults")).json() == view(0.0, "before", {})


async def test_faults_reads_the_seed_and_each_fault_names_its_service_and_operation(
    http, service, caplog: pytest.LogCaptureFixture
) -> None:
    service.inject_faults(faults("before", 1.0, "credit", seed=7))
    with caplog.at_level(logging.INFO, logger="repository_after.service_layer.faults"):
        assert (await service.perform("credit", "k1", body(1))).status_code == 500
    assert [r.getMessage() for r in caplog.records] == ["injected fault before on counter credit"]
    counted = {"credit": {"before": 1, "after": 0}}
    assert (await http.get("/faults")).json() == {**view(1.0, "before", counted), "seed": 7}
