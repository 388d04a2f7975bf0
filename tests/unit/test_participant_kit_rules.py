"""The kit's rules that the account service needed from it (`participant_kit.rules`), on the
small counter service of `test_participant_kit` over a real SQLite file: a compensation's guard,
a refused compensation that fences nothing, a settlement's or compensation's body checked field
by field, a service's own tombstone bodies, and the exact words of every unrecorded refusal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, StrictInt, StrictStr

from repository_after.participant_kit import (
    Kind,
    ParticipantService,
    Refusal,
    SqliteParticipantStore,
    Tx,
    canonical,
)
from repository_after.participant_kit.rules import agrees
from tests.unit.test_participant_kit import SCHEMA, CreditIn, credit, records, value
from tests.unit.test_participant_kit import build as build_counter


def locked_out(tx: Tx, key: str, body: dict[str, Any] | None) -> None:
    """A guard: a key starting with 'locked' may not be compensated (a pivot passed), nor a
    counter named 'frozen' (the guard sees the call's body)."""
    del tx
    if key.startswith("locked") or (body or {}).get("name") == "frozen":
        raise Refusal("too_late", f"{key} may no longer be compensated")


def shaped(
    operation: str, key: str, status: str, data: dict[str, Any] | None, applied: Any
) -> dict[str, Any]:
    source = applied if applied is not None else (data or {})
    return {"id": key, "op": operation, "status": status, "name": source.get("name")}


def build(path: Path, *, tombstone: bool = False) -> ParticipantService:
    extra = {"tombstone": shaped} if tombstone else {}
    return build_counter(path, guard=locked_out, **extra)


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[ParticipantService]:
    svc = build(tmp_path / "counter.db")
    yield svc
    await svc.store.close()


def body(amount: int, name: str = "c") -> CreditIn:
    return CreditIn(name=name, amount=amount)


async def test_a_guard_refuses_the_compensation_records_it_and_undoes_nothing(service) -> None:
    await service.perform("credit", "locked-1", body(5))
    refused = await service.perform("uncredit", "locked-1", body(5))
    assert (refused.status_code, refused.json()) == (
        409,
        {"error": "too_late", "message": "locked-1 may no longer be compensated"},
    )
    again = await service.perform("uncredit", "locked-1", None)
    assert (again.status_code, again.body, again.replayed) == (409, refused.body, True)
    assert await value(service) == 5


async def test_a_guard_runs_before_the_tombstone(service) -> None:
    refused = await service.perform("uncredit", "locked-2", None)
    assert refused.json()["error"] == "too_late"
    assert [r[0] for r in await records(service)] == ["uncredit"]


async def test_a_guard_sees_the_calls_body(service) -> None:
    refused = await service.perform("uncredit", "k7", body(5, name="frozen"))
    assert refused.json() == {"error": "too_late", "message": "k7 may no longer be compensated"}


async def test_a_refused_compensation_fences_nothing_the_late_action_applies(service) -> None:
    """A compensation that undid nothing must not refuse its action: the saga past its pivot
    goes forward, and refusing the late action would leave it half done."""
    await service.perform("uncredit", "locked-3", None)
    late = await service.perform("credit", "locked-3", body(5))
    assert (late.status_code, late.json()["status"]) == (200, "credited")
    assert await value(service) == 5


async def test_a_compensation_body_agrees_field_by_field_on_replay(service) -> None:
    await service.perform("credit", "k1", body(5))
    first = await service.perform("uncredit", "k1", None)
    assert first.json()["status"] == "uncredited"
    same = await service.perform("uncredit", "k1", body(5))
    assert (same.body, same.replayed) == (first.body, True)
    other = await service.perform("uncredit", "k1", body(6))
    assert (other.status_code, other.json()) == (
        422,
        {
            "error": "idempotency_key_reused",
            "message": "uncredit for 'k1' disagrees with the credit recorded for that id",
        },
    )
    assert await value(service) == 0


async def test_a_settlement_body_agrees_field_by_field_with_the_action(service) -> None:
    await service.perform("credit", "k1", body(5))
    wrong = await service.perform("void_credit", "k1", body(5, name="d"))
    assert (wrong.status_code, wrong.json()) == (
        422,
        {
            "error": "idempotency_key_reused",
            "message": "void_credit for 'k1' disagrees with the credit recorded for that id",
        },
    )
    assert (await service.perform("void_credit", "k1", None)).json()["status"] == "already_applied"


async def test_the_fences_say_which_rule_refused(service) -> None:
    await service.perform("uncredit", "k1", None)
    await service.perform("void_credit", "k2", None)
    compensated = await service.perform("credit", "k1", body(5))
    voided = await service.perform("credit", "k2", body(5))
    assert (compensated.status_code, compensated.json()) == (
        409,
        {
            "error": "transaction_compensated",
            "message": "transaction 'k1' was compensated; its credit is refused",
        },
    )
    assert (voided.status_code, voided.json()) == (
        409,
        {
            "error": "transaction_voided",
            "message": "transaction 'k2' was voided; its credit is refused",
        },
    )


async def test_a_service_shapes_its_own_tombstones(tmp_path: Path) -> None:
    service = build(tmp_path / "shaped.db", tombstone=True)
    try:
        tomb = await service.perform("uncredit", "k1", body(5, name="x"))
        void = await service.perform("void_credit", "k2", None)
        await service.perform("credit", "k3", body(5, name="y"))
        settled = await service.perform("void_credit", "k3", None)
    finally:
        await service.store.close()
    assert tomb.json() == {
        "id": "k1",
        "op": "uncredit",
        "status": "nothing_to_compensate",
        "name": "x",
    }
    assert void.json() == {"id": "k2", "op": "void_credit", "status": "voided", "name": None}
    assert settled.json() == {
        "id": "k3",
        "op": "void_credit",
        "status": "already_applied",
        "name": "y",
    }


def test_a_kit_service_needs_a_request_model(tmp_path: Path) -> None:
    service = ParticipantService(
        "counter", SqliteParticipantStore(tmp_path / "m.db", schema=SCHEMA)
    )
    with pytest.raises(ValueError, match="needs its request model"):
        service.action("credit", None, credit)


class NotedIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: StrictStr
    amount: StrictInt
    note: StrictStr | None = None


def noted_credit(tx: Tx, key: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"status": "credited", "note": body["note"]}


async def test_an_actions_body_is_compared_whole_an_unset_field_included(tmp_path: Path) -> None:
    """Field by field is for settlement checks only: an action repeated with a field it left
    unset now set is another request (a compensation would agree with it)."""
    service = ParticipantService("noted", SqliteParticipantStore(tmp_path / "n.db", schema=SCHEMA))
    service.action("credit", NotedIn, noted_credit)
    try:
        first = await service.perform("credit", "k1", NotedIn(name="c", amount=5))
        other = await service.perform("credit", "k1", NotedIn(name="c", amount=5, note="x"))
    finally:
        await service.store.close()
    assert first.json() == {"status": "credited", "note": None}
    assert (other.status_code, other.json()["error"]) == (422, "idempotency_key_reused")
    assert agrees(Kind.ACTION, canonical({"a": 1, "b": None}), {"a": 1, "b": 2}) is False
    assert agrees(Kind.SETTLEMENT, canonical({"a": 1, "b": None}), {"a": 1, "b": 2}) is True
