"""The kit's rules: how one call of an operation under a key is decided, inside ONE transaction.

`decide(tx, book, operation, key, data)` is the whole of it, for every participant (the inventory
and orders services through `ParticipantService.perform`, the account service through
`service_layer.accounts`): every call of an operation under a key (the orchestrator's
`transaction-id`; an action, its compensation and its settlement share it), in this order:

(a) a record for (operation, key) answers first: the same request replays the recorded answer
    byte for byte (`replayed`); a different one is 422 `idempotency_key_reused`, not recorded.
    "The same" for an action is the canonical JSON of its body; for a compensation or a
    settlement, whose body is only a check (it may be absent or partial), every field given on
    both sides agrees (`agrees`);
(b) an action whose compensation rolled it back or fenced it out (an applied compensation or its
    `nothing_to_compensate` tombstone), or whose settlement is recorded (`voided`), is refused,
    409 `transaction_compensated` / `transaction_voided`, not recorded: a late delivery changes
    nothing. A compensation the service REFUSED (its `guard`, below) undid nothing, so it fences
    nothing;
(c) a compensation runs its `guard` first (the service's own cross-operation rule, e.g. "not
    after the saga's pivot"; a `Refusal` there is recorded); then with no applied action it
    records the tombstone `nothing_to_compensate` (200); with one, its handler runs with the
    action's recorded answer as its body, and its answer is recorded;
(d) a settlement with an applied action answers `already_applied`; with none it records the
    tombstone `voided`;
(e) a `Refusal` undoes the handler's partial work (a savepoint) and is recorded and replayed like
    a success.
A compensation or settlement given a body must agree with the applied action's request, on its
first call and on every repeat, else 422 `idempotency_key_reused`. The bodies of (c)'s and (d)'s
own answers are the action's `tombstone` (default `tombstone_body`), so a service can keep its
own answer shape.

Where records live is the `Book` (`records.Book`): the kit's `participant_records` table by
default; the account service keeps its own records and rebuilds purged ones from its ledger.
A kit rule that refuses without recording raises `Rejected`, which rolls the transaction back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, NamedTuple, Protocol, TypeVar

import orjson
from pydantic import BaseModel

from repository_after.participant_kit.records import Answer, Book, Record, canonical, error_body

Body = dict[str, Any]
TxT = TypeVar("TxT", bound="KitTx")
TxC = TypeVar("TxC", bound="KitTx", contravariant=True)

NOTHING_TO_COMPENSATE = "nothing_to_compensate"
ALREADY_APPLIED = "already_applied"
VOIDED = "voided"


class KitTx(Protocol):
    """What the rules need of a transaction; a handler sees the service's whole `Tx`."""

    def lock(self, key: str) -> None:
        """Serialise, until the transaction ends, with every other transaction locking `key`."""
        ...

    def savepoint(self) -> Any:
        """A context manager: an exception leaving it undoes only what was done inside."""
        ...


class Handler(Protocol[TxC]):
    def __call__(self, tx: TxC, key: str, body: Body, /) -> Body: ...


#: (operation, key, status word, the call's body or None, the applied action's answer or None)
#: -> the body of a tombstone or an `already_applied` answer.
TombstoneBody = Callable[[str, str, str, "Body | None", "Body | None"], Body]


class Kind(StrEnum):
    ACTION = "action"
    COMPENSATION = "compensation"
    SETTLEMENT = "settlement"


class Refusal(Exception):
    """A definite business refusal: recorded and replayed like a success, answered
    `{"error": code, "message": message}` with `http_status` (a 4xx the orchestrator reads as
    definite: not 408 or 429, which it retries)."""

    def __init__(self, code: str, message: str, http_status: int = 409) -> None:
        if not 400 <= http_status < 500 or http_status in (408, 429):
            raise ValueError(f"a refusal is a definite 4xx (not 408/429), not {http_status}")
        super().__init__(message)
        self.code, self.message, self.http_status = code, message, http_status


class Rejected(Exception):
    """A kit rule refused the call; answered, never recorded (the transaction rolls back)."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status_code, self.code, self.message = status_code, code, message


class Compensation(NamedTuple, Generic[TxT]):
    """An action's compensation: its operation name, its handler (which receives the action's
    recorded answer as its body) and an optional `guard(tx, key, body)` that may raise `Refusal`
    before anything else is decided (rule (c))."""

    name: str
    handler: Handler[TxT]
    guard: Callable[[TxT, str, Body | None], None] | None = None


def tombstone_body(
    operation: str, key: str, status: str, data: Body | None, applied: Body | None
) -> Body:
    """The kit's own answer shape for (c) and (d): the tombstone names the call; an
    `already_applied` settlement repeats the action's answer with its own status."""
    del data
    if applied is not None:
        return {**applied, "status": status}
    return {"operation": operation, "transaction_id": key, "status": status}


@dataclass(frozen=True, slots=True)
class Action(Generic[TxT]):
    name: str
    model: type[BaseModel] | None
    handler: Handler[TxT]
    compensation: Compensation[TxT] | None = None
    settlement: str | None = None
    tombstone: TombstoneBody = tombstone_body


def agrees(kind: Kind, recorded: str, data: Body | None) -> bool:
    """Whether a call repeats the request `recorded` (canonical JSON): an action's body exactly;
    a compensation's or settlement's in every field given on both sides."""
    if kind is Kind.ACTION:
        return canonical(data) == recorded
    before = orjson.loads(recorded)
    if data is None or not isinstance(before, dict):
        return True
    return all(
        before[name] == value
        for name, value in data.items()
        if value is not None and before.get(name) is not None
    )


def _checked(answer: object, operation: str) -> Body:
    if not isinstance(answer, dict) or not isinstance(answer.get("status"), str):
        raise TypeError(f"{operation}: a handler answers a dict with a 'status' string")
    return answer


def decide(
    tx: TxT,
    book: Book[TxT],
    kind: Kind,
    action: Action[TxT],
    operation: str,
    key: str,
    data: Body | None,
) -> Answer:
    """One call, rules (a)-(e), inside the caller's transaction (which it must commit); raises
    `Rejected` for a refusal that must not be recorded."""
    tx.lock(key)
    request = canonical(data)
    previous = book.get(tx, operation, key)
    if previous is not None:
        if not agrees(kind, previous.request, data):
            raise Rejected(
                422,
                "idempotency_key_reused",
                f"transaction id {key!r} was already used for a different {operation} request",
            )
        if kind is not Kind.ACTION and data is not None:
            _applied_action(tx, book, action, operation, key, data)
        return previous.answer()
    if kind is Kind.ACTION:
        assert data is not None  # an action's body is required
        _fence(tx, book, action, key)
        return _run(tx, book, action.handler, operation, key, request, data)
    compensation = action.compensation if kind is Kind.COMPENSATION else None
    if compensation is not None and compensation.guard is not None:
        try:
            compensation.guard(tx, key, data)
        except Refusal as refusal:
            return _refused(tx, book, refusal, operation, key, request)
    applied = _applied_action(tx, book, action, operation, key, data)
    answer = None if applied is None else orjson.loads(applied.body)
    if compensation is not None:
        if answer is None:
            body = action.tombstone(operation, key, NOTHING_TO_COMPENSATE, data, None)
            return book.put(tx, operation, key, request, 200, body, False)
        return _run(tx, book, compensation.handler, operation, key, request, answer)
    status = VOIDED if answer is None else ALREADY_APPLIED
    body = action.tombstone(operation, key, status, data, answer)
    return book.put(tx, operation, key, request, 200, body, False)


def _applied_action(
    tx: TxT, book: Book[TxT], action: Action[TxT], operation: str, key: str, data: Body | None
) -> Record | None:
    """The applied action of a compensation or settlement; refused (422) if the call's body
    disagrees with it, first call or repeat (a repeat first sent without a body recorded none)."""
    done = book.get(tx, action.name, key)
    applied = done if done is not None and done.applied else None
    if applied is not None and not agrees(Kind.COMPENSATION, applied.request, data):
        raise Rejected(
            422,
            "idempotency_key_reused",
            f"{operation} for {key!r} disagrees with the {action.name} recorded for that id",
        )
    return applied


def _fences(record: Record | None) -> bool:
    return record is not None and record.status_code == 200


def _fence(tx: TxT, book: Book[TxT], action: Action[TxT], key: str) -> None:
    """Refuse an action whose compensation undid or fenced it, or whose settlement answered."""
    compensation = action.compensation
    if compensation is not None and _fences(book.get(tx, compensation.name, key)):
        raise Rejected(
            409,
            "transaction_compensated",
            f"transaction {key!r} was compensated; its {action.name} is refused",
        )
    if action.settlement is not None and book.get(tx, action.settlement, key) is not None:
        raise Rejected(
            409,
            "transaction_voided",
            f"transaction {key!r} was voided; its {action.name} is refused",
        )


def _refused(
    tx: TxT, book: Book[TxT], refusal: Refusal, operation: str, key: str, request: str
) -> Answer:
    refused = error_body(refusal.code, refusal.message)
    return book.put(tx, operation, key, request, refusal.http_status, refused, False)


def _run(
    tx: TxT,
    book: Book[TxT],
    handler: Handler[TxT],
    operation: str,
    key: str,
    request: str,
    body: Body,
) -> Answer:
    try:
        with tx.savepoint():
            answer = _checked(handler(tx, key, body), operation)
    except Refusal as refusal:
        return _refused(tx, book, refusal, operation, key, request)
    return book.put(tx, operation, key, request, 200, answer, True)
