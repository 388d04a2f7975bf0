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
    recorded, so a retry with the same key decides afresh. No traceback or SQL is ever answered;
(f) an operation the service's fault settings name (`inject_faults`, `faults`) may fail on
    purpose, 500 `injected_fault`: `before` anything is decided (nothing changes), or `after`
    the transaction above COMMITTED (the lost answer: a retry under the key replays it).

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
from enum import StrEnum
from typing import Any, NamedTuple

import orjson
from pydantic import BaseModel

from repository_after.participant_kit import records
from repository_after.participant_kit.faults import OperationFaults, ParticipantFaults
from repository_after.participant_kit.records import Answer, canonical, error, error_body
from repository_after.participant_kit.storage import ParticipantStore, Tx
from repository_after.service_layer.faults import FaultPoint
from repository_after.service_layer.ports import StorageError

logger = logging.getLogger(__name__)

Body = dict[str, Any]
Handler = Callable[[Tx, str, Body], Body]

#: An operation's name is its route (`POST /<name>`): lower-case words joined by underscores.
OPERATION_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
#: Routes the kit's router owns; no operation may take their names.
RESERVED_NAMES = frozenset({"batch", "faults", "health"})

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
        self.faults = OperationFaults(name)  # none until `inject_faults`

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

    def inject_faults(self, settings: ParticipantFaults) -> None:
        """Fail the operations `settings` names on purpose (rule (f)); a ValueError names an
        operation this service does not have."""
        self.faults.configure(settings, known=self._operations)

    def parse(self, operation: str, raw: object) -> BaseModel | None:
        """The body, validated by the operation's model (raises pydantic's `ValidationError`).
        A compensation or settlement may come without one (None)."""
        kind, action = self._operations[operation]
        if raw is None and kind is not Kind.ACTION:
            return None
        return action.model.model_validate(raw)

    async def perform(self, operation: str, key: str, body: BaseModel | None) -> Answer:
        """Decide one call in one transaction (rules (a)-(f) above); never raises."""
        kind, action = self._operations[operation]
        data = None if body is None else body.model_dump(mode="json")
        point = self.faults.draw(operation, key)
        if point is FaultPoint.BEFORE:
            return error(500, "injected_fault", f"injected fault before the {operation}")

        def decide(tx: Tx) -> Answer:
            tx.lock(key)
            return _decide(tx, kind, action, operation, key, data)

        try:
            answer = await self.store.transaction(decide)
        except _Rejected as exc:
            return error(exc.status_code, exc.code, exc.message)
        except StorageError as exc:
            logger.error("%s %s: storage failure: %s", self.name, operation, exc)
            return error(503, "storage_unavailable", "storage is unavailable; retry later")
        except Exception:
            logger.exception("%s %s failed for key %r", self.name, operation, key)
            return error(500, "internal_error", "internal error")
        if point is FaultPoint.AFTER:  # committed: the caller learns it only by asking again
            return error(
                500,
                "injected_fault",
                "injected fault: the answer was lost after the request was processed",
            )
        return answer


def _decide(
    tx: Tx, kind: Kind, action: Action, operation: str, key: str, data: Body | None
) -> Answer:
    request = canonical(data)
    previous = records.get(tx, operation, key)
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
    done = records.get(tx, action.name, key)
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
            return records.put(
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
        return records.put(tx, operation, key, request, 200, {**tombstone, "status": VOIDED}, False)
    answer = {**orjson.loads(applied.body), "status": ALREADY_APPLIED}
    return records.put(tx, operation, key, request, 200, answer, False)


def _fence(tx: Tx, action: Action, key: str) -> None:
    """Refuse an action whose compensation or settlement already answered for this key."""
    if (
        action.compensation is not None
        and records.get(tx, action.compensation.name, key) is not None
    ):
        raise _Rejected(
            409,
            "transaction_compensated",
            f"{action.compensation.name} already ran for {key!r}; its {action.name} is refused",
        )
    if action.settlement is not None and records.get(tx, action.settlement, key) is not None:
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
        return records.put(tx, operation, key, request, refusal.http_status, refused, False)
    return records.put(tx, operation, key, request, 200, answer, True)
