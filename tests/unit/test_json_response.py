"""`JsonResponse` (orjson) answers the same bytes as Starlette's `JSONResponse` for what the routes
answer: a transfer's view with enums and nulls, operation replies, batch results, text beyond
ASCII. If orjson and the standard library ever disagree on one of these, a client would see the
answer change with the route that produced it."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.responses import JSONResponse

from repository_after.domain.saga import EventKind, Outcome, SagaEvent, StepRole, replay
from repository_after.domain.transfer import TRANSFER
from repository_after.entrypoints.json_response import JsonResponse
from repository_after.service_layer.saga_ports import StoredSaga
from repository_after.service_layer.saga_views import saga_view

QUOTED = "\u2018quoted\u2019 \u2013 \u65e5\u672c"  # curly quotes, a dash, two kanji
AT = "2026-11-23T10:15:02.123456+00:00"


def _step(step: str, outcome: Outcome, code: int, **answer: str) -> tuple[SagaEvent, ...]:
    """The intent and one decisive attempt of the action `step`."""
    intent = SagaEvent(
        EventKind.OPERATION_STARTED, at=AT, step=step, role=StepRole.ACTION, operation=step
    )
    attempt = intent._replace(
        kind=EventKind.ATTEMPT, outcome=outcome, attempt=1, status_code=code, started_at=AT
    )
    return intent, attempt._replace(**answer)


def _compensated_transfer() -> dict[str, Any]:
    events = (
        SagaEvent(EventKind.STARTED, at=AT),
        *_step("debit", Outcome.SUCCEEDED, 200, result="applied"),
        *_step("credit", Outcome.REJECTED, 404, error="account_not_found"),
    )
    params = {"source": "a", "target": "zürich-✓", "amount": 2**53 + 1}
    stored = StoredSaga(
        "t-1", TRANSFER.name, 1, TRANSFER.shape_hash(), params, "compensating", AT, AT, events
    )
    return saga_view(stored=stored, state=replay(TRANSFER, events))


CONTENTS: list[Any] = [
    _compensated_transfer(),
    {
        "transaction_id": "t1",
        "operation": "debit",
        "account_id": "a",
        "amount": 300,
        "balance_after": None,
        "status": "applied",
    },
    {"results": [{"status_code": 409, "body": {"error": "x", "message": QUOTED}}]},
    {"flags": [True, False, None], "empty": {}, "nested": [[], [0, -1]], "text": 'a"b\\c\n\t'},
]


@pytest.mark.parametrize("content", CONTENTS)
def test_the_bytes_are_those_of_starlettes_json_response(content: Any) -> None:
    fast = JsonResponse(content, status_code=201, headers={"Location": "/x"})
    plain = JSONResponse(content, status_code=201, headers={"Location": "/x"})
    assert fast.body == plain.body
    assert fast.raw_headers == plain.raw_headers
    assert fast.status_code == plain.status_code


def test_the_transfer_view_holds_enums_as_their_values() -> None:
    body = JsonResponse(_compensated_transfer()).body
    assert b'"role":"action"' in body
    assert b'"outcome":"rejected"' in body
