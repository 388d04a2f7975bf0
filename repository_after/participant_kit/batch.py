"""`POST /batch` of the kit's router: several operations of one participant in one exchange.

`{"operations": [{"operation", "transaction_id", "traceparent"?, …fields}]}`, 1..`max_batch`
items, validated as a whole (`batch_items`: an invalid batch is 422 and runs nothing); each item
runs as its single endpoint would (`Served.perform`, its own transaction and fault draw) and is
answered `{"status_code", "body", "replayed"}` in order, its body the very bytes the single
endpoint sends.

Observed like the single endpoint, item by item (`run_item`):
- its log lines carry its transaction id (`observability.context`: each item runs in a task of
  its own under `asyncio.gather`, so the id is set for that item's lines only);
- a replayed item is reported to `EdgeHooks.on_replay` under its single endpoint's route (the
  batch route's sibling: `/inventory/batch` -> `/inventory/reserve`), as the HTTP middleware
  counts a replayed single call;
- with a tracer, each item is a SERVER span named as its single endpoint, a child of the item's
  `traceparent` (the saga step that made the call; a malformed one is ignored, as the header)
  and linked to the batch's span, so a saga stays one trace. No tracer: no span, no cost.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
from fastapi import Response
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from pydantic import BaseModel, ValidationError

from repository_after.domain.ids import TRANSACTION_ID_PATTERN
from repository_after.observability.context import current_transaction_id
from repository_after.participant_kit.answers import invalid_request, validation_details
from repository_after.participant_kit.records import Answer

ITEM_FIELDS = ("operation", "transaction_id", "traceparent")
MAX_TRACEPARENT = 256


class _Parses(Protocol):
    @property
    def operations(self) -> Mapping[str, object]: ...

    def parse(self, operation: str, raw: object) -> BaseModel | None: ...


@dataclass(frozen=True, slots=True)
class EdgeHooks:
    """What a host observes of the kit's edge: its tracer (None: no spans) and a counter of
    replays by route (`on_replay(route)`), for the items of a batch."""

    tracer: trace.Tracer | None = None
    on_replay: Callable[[str], None] | None = None


@dataclass(frozen=True, slots=True)
class Item:
    operation: str
    key: str
    body: BaseModel | None
    traceparent: str | None


class BatchResultOut(BaseModel):
    status_code: int
    body: dict[str, object]
    replayed: bool


class BatchOut(BaseModel):
    results: list[BatchResultOut]


def batch_schema(operations: list[str], max_batch: int) -> dict[str, Any]:
    """The request body's JSON schema, for the OpenAPI document: each item's own fields are the
    single endpoint's body (documented there); these are what every item has."""
    item = {
        "type": "object",
        "required": ["operation", "transaction_id"],
        "properties": {
            "operation": {"type": "string", "enum": operations},
            "transaction_id": {"type": "string", "pattern": TRANSACTION_ID_PATTERN.pattern},
            "traceparent": {"type": "string", "maxLength": MAX_TRACEPARENT},
        },
    }
    return {
        "type": "object",
        "required": ["operations"],
        "additionalProperties": False,
        "properties": {
            "operations": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_batch,
                "items": item,
            }
        },
    }


def _shape(msg: str, kind: str, *where: str) -> Response:
    return invalid_request([{"loc": ["body", *where], "msg": msg, "type": kind}])


def batch_items(service: _Parses, raw: object, max_batch: int) -> list[Item] | Response:
    """Every item validated, or the 422 that refuses the whole batch."""
    operations = raw.get("operations") if isinstance(raw, dict) else None
    if not isinstance(raw, dict) or set(raw) != {"operations"} or not isinstance(operations, list):
        return _shape("expected {'operations': [...]}", "batch_shape")
    if not 1 <= len(operations) <= max_batch:
        return _shape(f"a batch holds 1 to {max_batch} operations", "batch_size", "operations")
    items: list[Item] = []
    details: list[dict[str, object]] = []
    for i, entry in enumerate(operations):
        where = ("body", "operations", i)
        if not isinstance(entry, dict):
            details.append({"loc": list(where), "msg": "expected an object", "type": "dict_type"})
            continue
        operation, key = entry.get("operation"), entry.get("transaction_id")
        traceparent = entry.get("traceparent")
        problems = []
        if not isinstance(operation, str) or operation not in service.operations:
            problems.append(("operation", "unknown operation", "operation"))
        if not isinstance(key, str) or TRANSACTION_ID_PATTERN.fullmatch(key) is None:
            problems.append(("transaction_id", "invalid transaction id", "transaction_id"))
        if traceparent is not None and not (
            isinstance(traceparent, str) and len(traceparent) <= MAX_TRACEPARENT
        ):
            problems.append(("traceparent", "invalid traceparent", "traceparent"))
        if problems:
            details.extend({"loc": [*where, f], "msg": m, "type": t} for f, m, t in problems)
            continue
        assert isinstance(operation, str)
        assert isinstance(key, str)
        fields = {k: v for k, v in entry.items() if k not in ITEM_FIELDS}
        try:
            body = service.parse(operation, fields or None)
        except ValidationError as exc:
            details.extend(validation_details(exc, where))
            continue
        items.append(Item(operation, key, body, traceparent))
    return invalid_request(details) if details else items


def _caller(traceparent: str | None) -> Context | None:
    """The calling step's context; None (a child of the batch's span) if absent or malformed."""
    if traceparent is None:
        return None
    context = propagate.extract({"traceparent": traceparent})
    return context if trace.get_current_span(context).get_span_context().is_valid else None


async def run_item(
    perform: Callable[[str, str, BaseModel | None], Awaitable[Answer]],
    item: Item,
    *,
    route: str,
    hooks: EdgeHooks,
) -> dict[str, Any]:
    """One item, observed as its single endpoint (`route`) would be (see above)."""
    current_transaction_id.set(item.key)
    if hooks.tracer is None:
        answer = await perform(item.operation, item.key, item.body)
    else:
        batch_span = trace.get_current_span().get_span_context()
        with hooks.tracer.start_as_current_span(
            f"POST {route}",
            context=_caller(item.traceparent),
            kind=SpanKind.SERVER,
            links=[Link(batch_span)] if batch_span.is_valid else None,
            attributes={"sagabank.transaction_id": item.key, "sagabank.batched": True},
            record_exception=True,
        ) as span:
            answer = await perform(item.operation, item.key, item.body)
            span.set_attribute("http.route", route)
            span.set_attribute("http.response.status_code", answer.status_code)
            if answer.status_code >= 500:
                span.set_status(Status(StatusCode.ERROR))
    if answer.replayed and hooks.on_replay is not None:
        hooks.on_replay(route)
    # The item's exact bytes, as the single endpoint sends them (a Fragment is not re-encoded).
    body = orjson.Fragment(answer.body)
    return {"status_code": answer.status_code, "body": body, "replayed": answer.replayed}
