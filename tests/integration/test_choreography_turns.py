"""A participant decides each turn of a saga once: the call or its time-out, whichever its store
commits first; the other changes nothing and publishes nothing. On a real SQLite kit store
(the inventory, with its inbox, outbox and turns), the reactor fed directly through its inbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from repository_after.bootstrap import saga_types
from repository_after.choreography.course import Course, Kind
from repository_after.choreography.reactor import Reactor
from repository_after.choreography.stores import kit_decide, schema
from repository_after.domain import choreography
from repository_after.domain.order import ORDER
from repository_after.domain.saga import EventKind, Outcome, SagaEvent
from repository_after.messaging.inbox import Inbox
from repository_after.participant_kit import ParticipantService
from repository_after.services import inventory
from repository_after.services.hosting import open_store

AT = "2026-12-05T00:00:00.000000+00:00"
PARAMS = {
    "order_id": "o-1",
    "customer": "acc-01",
    "merchant": "acc-02",
    "lines": [{"sku": "apple", "qty": 2}],
    "total": 50,
}


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[ParticipantService]:
    store = open_store(tmp_path / "inv.db", schema=(*inventory.SCHEMA, *schema()), name="inv")
    svc = inventory.inventory_service(store)
    await store.transaction(lambda tx: inventory.open_stock(tx, "apple", 5))
    yield svc
    await store.close()


def _reserve_due() -> Course:
    """The order saga with its order created, waiting on the inventory's reserve."""
    started = choreography.start(ORDER, at=AT)
    state, call = choreography.pending(ORDER, started.history)
    created = SagaEvent(
        EventKind.ATTEMPT,
        at=AT,
        step=call.step.name,
        role=call.role,
        operation=call.operation,
        outcome=Outcome.SUCCEEDED,
        attempt=1,
        status_code=200,
    )
    reaction = choreography.react(ORDER, state, started.history, [created], at=AT)
    return Course.of("s-1", ORDER, PARAMS, reaction.history, Kind.CALL)


def _inbox(svc: ParticipantService) -> Inbox:
    reactor = Reactor(
        "inventory", decide=kit_decide(svc), lookup=saga_types().version, exchange="t.events"
    )
    return Inbox(svc.store, consumer="inventory", handler=reactor.handle)


async def _outbox(svc: ParticipantService) -> list[tuple[str, dict[str, Any]]]:
    rows = await svc.store.read(lambda tx: tx.execute("SELECT routing_key, body FROM outbox"))
    return [(key, orjson.loads(body)) for key, body in rows]


async def test_a_time_out_after_the_call_was_performed_changes_nothing(
    service: ParticipantService,
) -> None:
    inbox, due = _inbox(service), _reserve_due()
    performed = await inbox.handle(due.message(service="inventory", publisher="t"))
    assert performed.result["outcome"] == "attempt"
    late = await inbox.handle(
        Course.of(due.saga_id, ORDER, PARAMS, due.history, Kind.TIMEOUT).message(
            service="inventory", publisher="tracker"
        )
    )
    assert late.result == {"ignored": "turn 2 was performed"}
    sent = await _outbox(service)
    assert [key for key, _ in sent] == ["call.accounts.order"]  # the charge, once


async def test_a_call_after_its_time_out_publishes_nothing(service: ParticipantService) -> None:
    inbox, due = _inbox(service), _reserve_due()
    timed_out = await inbox.handle(
        Course.of(due.saga_id, ORDER, PARAMS, due.history, Kind.TIMEOUT).message(
            service="inventory", publisher="tracker"
        )
    )
    assert timed_out.result["outcome"] == "retries_exhausted"
    sent = await _outbox(service)
    assert [key for key, _ in sent] == ["call.inventory.order"]  # its release
    release = Course.from_payload(sent[0][1])
    assert release.history[-1].operation == "release"
    late = await inbox.handle(due.message(service="inventory", publisher="t"))
    assert late.result["fenced"] == "timed_out"
    assert len(await _outbox(service)) == 1  # the late call sent nothing on
    # its release runs next and leaves the stock as it was
    await inbox.handle(release.message(service="inventory", publisher="inventory"))
    rows = await service.store.read(lambda tx: inventory.list_stock(tx))
    assert [(r["available"], r["reserved"]) for r in rows] == [(5, 0)]


async def test_a_message_for_another_service_is_refused(service: ParticipantService) -> None:
    due = _reserve_due()
    accounts = Reactor(
        "accounts", decide=kit_decide(service), lookup=saga_types().version, exchange="t.events"
    )
    with pytest.raises(Exception, match="inventory's"):
        accounts.handle(None, due.message(service="inventory", publisher="t"))  # type: ignore[arg-type]
