"""Who published each event of a choreographed saga (issue 24, item 6: debuggability).

The service that reacts stamps the events it appends to the course (`domain.choreography.react`):
its call's outcome and the next call's intent; the API stamps the first two. The stamp travels
with the history (a course message's payload) unchanged, so the tracker's projection, which
matches events by their JSON, sees the same events; the saga's views show it beside each attempt
(`saga_view`) and in the CLI's history (`history_rows`). An orchestrated saga's events carry
none, and its views are as they were."""

from __future__ import annotations

from repository_after.domain import choreography
from repository_after.domain.saga import EventKind, Outcome, SagaEvent, StepRole, replay
from repository_after.domain.transfer import TRANSFER
from repository_after.service_layer.saga_ports import StoredSaga
from repository_after.service_layer.saga_views import history_rows, saga_view

AT = "2026-12-05T10:00:00+00:00"


def _succeeded(step: str) -> SagaEvent:
    return SagaEvent(
        EventKind.ATTEMPT,
        at=AT,
        step=step,
        role=StepRole.ACTION,
        operation=step,
        outcome=Outcome.SUCCEEDED,
        attempt=1,
        status_code=200,
        result="applied",
    )


def _stored(events: tuple[SagaEvent, ...]) -> StoredSaga:
    params = {"source": "acc-01", "target": "acc-02", "amount": 5}
    return StoredSaga("t-1", "transfer", 1, TRANSFER.shape_hash(), params, "x", AT, AT, events)


def _choreographed() -> tuple[SagaEvent, ...]:
    first = choreography.start(TRANSFER, at=AT, publisher="api")
    debited = choreography.react(
        TRANSFER, first.state, first.history, [_succeeded("debit")], at=AT, publisher="accounts"
    )
    credited = choreography.react(
        TRANSFER, debited.state, debited.history, [_succeeded("credit")], at=AT, publisher="bank-b"
    )
    return credited.history


def test_each_reaction_stamps_only_the_events_it_appends() -> None:
    history = _choreographed()

    assert [(e.kind.value, e.step, e.publisher) for e in history] == [
        ("started", None, "api"),
        ("operation_started", "debit", "api"),
        ("attempt", "debit", "accounts"),
        ("operation_started", "credit", "accounts"),
        ("attempt", "credit", "bank-b"),
    ]
    assert replay(TRANSFER, history).status == "completed"


def test_the_stamp_survives_the_message_payload_so_the_tracker_matches_events() -> None:
    history = _choreographed()

    assert tuple(SagaEvent.from_dict(e.as_dict()) for e in history) == history


def test_the_views_show_each_attempts_publisher_and_orchestrated_ones_none() -> None:
    history = _choreographed()
    view = saga_view(stored=_stored(history), state=replay(TRANSFER, history))
    orchestrated = tuple(e._replace(publisher=None) for e in history)
    plain = saga_view(stored=_stored(orchestrated), state=replay(TRANSFER, orchestrated))

    assert [(a["operation"], a["publisher"]) for a in view["attempts"]] == [
        ("debit", "accounts"),
        ("credit", "bank-b"),
    ]
    assert [a["publisher"] for a in plain["attempts"]] == [None, None]
    assert [row[-1] for row in history_rows(_stored(history))] == [
        "by api",
        "by api",
        "applied · by accounts",
        "by accounts",
        "applied · by bank-b",
    ]
    assert [row[-1] for row in history_rows(_stored(orchestrated))] == [
        "",
        "",
        "applied",
        "",
        "applied",
    ]
