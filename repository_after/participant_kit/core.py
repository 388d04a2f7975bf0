"""`ParticipantService`: a saga participant's operations, each answered exactly once per key.

A service registers its actions, each with an optional compensation and/or settlement, as
handlers `handler(tx, key, body) -> dict` (the answer body, with a "status" word) that do the
business change through `tx` (the transaction's connection, `storage.Tx`), or raise
`Refusal(code, message)` for a definite business refusal. The kit runs every call of an
operation under a key (the orchestrator's `transaction-id`; an action, its compensation and its
settlement share it) in ONE local transaction, in this order:

(a) a record for (operation, key) answers first: the same request (canonical JSON of the body)
    replays the recorded answer byte for byte (`replayed`); a different one is 422
    `idempotency_key_reused`, not recorded;
(b) an action whose compensation or settlement is recorded for the key (a tombstone, or the
    action was rolled back) is refused, 409 `transaction_compensated` / `transaction_voided`,
    not recorded: a late delivery changes nothing;
(c) a compensation with no applied action records the tombstone `nothing_to_compensate` (200);
    with one, its handler runs with the action's recorded answer as its body, and its answer is
    recorded;
(d) a settlement with an applied action answers `already_applied` (with the action's answer
    fields); with none it records the tombstone `voided`;
(e) a `Refusal` undoes the handler's partial work (a savepoint) and is recorded and replayed like
    a success; any other exception rolls the whole transaction back and answers 500
    `internal_error` (503 `storage_unavailable` for a storage failure): an unknown outcome, never
    recorded, so a retry with the same key decides afresh. No traceback or SQL is ever answered.

A compensation or settlement given a body (the orchestrator sends the step's request to every
role of a step) must agree with the applied action's request, else 422 `idempotency_key_reused`.
`perform` never raises: every outcome is an `Answer` (status, exact body bytes, replayed), which
is what the HTTP edge (`http.participant_router`) sends, alone or as an item of `/batch`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple

import orjson
from pydantic import BaseModel

from repository_after.participant_kit.storage import ParticipantStore, Tx
from repository_after.service_layer.ports import StorageError

logger = logging.getLogger(__name__)

Body = dict[str, Any]
Handler = Callable[[Tx, str, Body], Body]

#: An operation's name is its route (`POST /<name>`): lower-case words joined by underscores.
OPERATION_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
#: Routes the kit's router owns; no operation may take their names.
RESERVED_NAMES = frozenset({"batch", "health"})

NOTHING_TO_COMPENSATE = "nothing_to_compensate"
ALREADY_APPLIED = "already_applied"
VOIDED = "voided"


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


class _Rejected(Exception):
    """A kit rule refused the call; answered, never recorded."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status_code, self.code, self.message = status_code, code, message


class Compensation(NamedTuple):
    """An action's compensation: its operation name and its handler, which receives the
    action's recorded answer as its body."""

    name: str
    handler: Handler


@dataclass(frozen=True, slots=True)
class Action:
    name: str
    model: type[BaseModel]
    handler: Handler
    compensation: Compensation | None = None
    settlement: str | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """What the caller is told: the status, the exact body bytes, and whether it is a replay."""

    status_code: int
    body: bytes
    replayed: bool = False

    def json(self) -> Body:
        value: Body = orjson.loads(self.body)
        return value


class _Record(NamedTuple):
    request: str
    status_code: int
    body: str
    applied: bool

    def answer(self) -> Answer:
        return Answer(self.status_code, self.body.encode(), replayed=True)


def error_body(code: str, message: str) -> Body:
    return {"error": code, "message": message}


def _error(status_code: int, code: str, message: str) -> Answer:
    return Answer(status_code, orjson.dumps(error_body(code, message)))


def canonical(body: Mapping[str, Any] | None) -> str:
    """The request as recorded: sorted keys, no spaces; `null` for a call without a body."""
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS).decode()


_GET = "SELECT request, status_code, body, applied FROM participant_records"
_GET += " WHERE operation = ? AND key = ?"
_PUT = (
    "INSERT INTO participant_records (operation, key, request, status_code, body, applied,"
    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def _get(tx: Tx, operation: str, key: str) -> _Record | None:
    rows = tx.execute(_GET, (operation, key))
    if not rows:
        return None
    request, status_code, body, applied = rows[0]
    return _Record(str(request), int(status_code), str(body), bool(applied))


def _put(
    tx: Tx, operation: str, key: str, request: str, status_code: int, body: Body, applied: bool
) -> Answer:
    raw = orjson.dumps(body)
    now = datetime.now(UTC).isoformat(timespec="microseconds")
    tx.execute(_PUT, (operation, key, request, status_code, raw.decode(), int(applied), now))
    return Answer(status_code, raw)


def _checked(answer: object, operation: str) -> Body:
    if not isinstance(answer, dict) or not isinstance(answer.get("status"), str):
        raise TypeError(f"{operation}: a handler answers a dict with a 'status' string")
    return answer


class ParticipantService:
    """A participant's operations over its store. Register with `action`, then serve them with
    `http.participant_router` (or call `perform` directly)."""

    def __init__(self, name: str, store: ParticipantStore) -> None:
        self.name = name
        self.store = store
        self._operations: dict[str, tuple[Kind, Action]] = {}

    def action(
        self,
        name: str,
        model: type[BaseModel],
        handler: Handler,
        *,
        compensation: Compensation | None = None,
        settlement: str | None = None,
    ) -> Action:
        """Register an action (its request `model`), its compensation and its settlement."""
        action = Action(name, model, handler, compensation, settlement)
        names = [(name, Kind.ACTION)]
        if compensation is not None:
            names.append((compensation.name, Kind.COMPENSATION))
        if settlement is not None:
            names.append((settlement, Kind.SETTLEMENT))
        seen = {n for n, _ in names}
        if len(seen) != len(names):
            raise ValueError(f"{name}: an action, its compensation and settlement need 3 names")
        for op, _ in names:
            if not OPERATION_NAME.fullmatch(op) or op in RESERVED_NAMES:
                raise ValueError(f"{op!r} is not a valid operation name")
            if op in self._operations:
                raise ValueError(f"operation {op!r} is already registered")
        for op, kind in names:
            self._operations[op] = (kind, action)
        return action

    @property
    def operations(self) -> Mapping[str, tuple[Kind, Action]]:
        """Operation name -> its kind and the action it belongs to, in registration order."""
        return dict(self._operations)

    def model(self, operation: str) -> type[BaseModel]:
        return self._operations[operation][1].model

    def kind(self, operation: str) -> Kind:
        return self._operations[operation][0]

    def parse(self, operation: str, raw: object) -> BaseModel | None:
        """The body, validated by the operation's model (raises pydantic's `ValidationError`).
        A compensation or settlement may come without one (None)."""
        kind, action = self._operations[operation]
        if raw is None and kind is not Kind.ACTION:
            return None
        return action.model.model_validate(raw)

    async def perform(self, operation: str, key: str, body: BaseModel | None) -> Answer:
        """Decide one call in one transaction (rules (a)-(e) above); never raises."""
        kind, action = self._operations[operation]
        data = None if body is None else body.model_dump(mode="json")

        def decide(tx: Tx) -> Answer:
            tx.lock(key)
            return _decide(tx, kind, action, operation, key, data)

        try:
            return await self.store.transaction(decide)
        except _Rejected as exc:
            return _error(exc.status_code, exc.code, exc.message)
        except StorageError as exc:
            logger.error("%s %s: storage failure: %s", self.name, operation, exc)
            return _error(503, "storage_unavailable", "storage is unavailable; retry later")
        except Exception:
            logger.exception("%s %s failed for key %r", self.name, operation, key)
            return _error(500, "internal_error", "internal error")


def _decide(
    tx: Tx, kind: Kind, action: Action, operation: str, key: str, data: Body | None
) -> Answer:
    request = canonical(data)
    previous = _get(tx, operation, key)
    if previous is not None:
        if previous.request != request:
            raise _Rejected(
                422,
                "idempotency_key_reused",
                f"key {key!r} was already used for a different {operation} request",
            )
        return previous.answer()
    if kind is Kind.ACTION:
        assert data is not None  # an action's body is required (`parse`)
        _fence(tx, action, key)
        return _run(tx, action.handler, operation, key, request, data)
    done = _get(tx, action.name, key)
    applied = done if done is not None and done.applied else None
    if applied is not None and data is not None and request != applied.request:
        raise _Rejected(
            422,
            "idempotency_key_reused",
            f"{operation} for {key!r} disagrees with the {action.name} recorded for that key",
        )
    tombstone = {"operation": operation, "transaction_id": key}
    if kind is Kind.COMPENSATION:
        assert action.compensation is not None
        if applied is None:
            return _put(
                tx,
                operation,
                key,
                request,
                200,
                {**tombstone, "status": NOTHING_TO_COMPENSATE},
                False,
            )
        answer = orjson.loads(applied.body)
        return _run(tx, action.compensation.handler, operation, key, request, answer)
    if applied is None:
        return _put(tx, operation, key, request, 200, {**tombstone, "status": VOIDED}, False)
    answer = {**orjson.loads(applied.body), "status": ALREADY_APPLIED}
    return _put(tx, operation, key, request, 200, answer, False)


def _fence(tx: Tx, action: Action, key: str) -> None:
    """Refuse an action whose compensation or settlement already answered for this key."""
    if action.compensation is not None and _get(tx, action.compensation.name, key) is not None:
        raise _Rejected(
            409,
            "transaction_compensated",
            f"{action.compensation.name} already ran for {key!r}; its {action.name} is refused",
        )
    if action.settlement is not None and _get(tx, action.settlement, key) is not None:
        raise _Rejected(
            409,
            "transaction_voided",
            f"{action.settlement} already ran for {key!r}; its {action.name} is refused",
        )


def _run(
    tx: Tx,
    handler: Handler,
    operation: str,
    key: str,
    request: str,
    body: Body,
) -> Answer:
    try:
        with tx.savepoint():
            answer = _checked(handler(tx, key, body), operation)
    except Refusal as refusal:
        refused = error_body(refusal.code, refusal.message)
        return _put(tx, operation, key, request, refusal.http_status, refused, False)
    return _put(tx, operation, key, request, 200, answer, True)
