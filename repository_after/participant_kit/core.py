"""`ParticipantService`: a saga participant's operations, each answered exactly once per key.

A service registers its actions, each with an optional compensation and/or settlement, as
handlers `handler(tx, key, body) -> dict` (the answer body, with a "status" word) that do the
business change through `tx` (the transaction's connection, `storage.Tx`), or raise
`Refusal(code, message)` for a definite business refusal. `perform` runs every call of an
operation under a key in ONE local transaction by the kit's rules (`rules.decide`: replay, key
reuse, fences, tombstones, recorded refusals), and adds:

(e') any exception other than a `Refusal` rolls the whole transaction back and answers 500
    `internal_error` (503 `storage_unavailable` for a storage failure): an unknown outcome, never
    recorded, so a retry with the same key decides afresh. No traceback or SQL is ever answered;
(f) an operation the service's fault settings name (`inject_faults`, `faults`) may fail on
    purpose, 500 `injected_fault`: `before` anything is decided (nothing changes), or `after`
    the transaction above COMMITTED (the lost answer: a retry under the key replays it).

`perform` never raises: every outcome is an `Answer` (status, exact body bytes, replayed), which
is what the HTTP edge (`http.participant_router`) sends, alone or as an item of `/batch`.
`purge` is retention (`retention`): the records older than a cutoff, except those that fence.

`Operations` is the registry alone, generic in the transaction type: a service with its own
store and HTTP edge (the account service, `service_layer/accounts.py`) registers its operations
there and calls `decide` inside its own transactions, with its own `records.Book`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, Generic

from pydantic import BaseModel

from repository_after.participant_kit import retention
from repository_after.participant_kit.faults import OperationFaults, ParticipantFaults
from repository_after.participant_kit.records import SQL_BOOK, Answer, Book, error
from repository_after.participant_kit.rules import (
    ALREADY_APPLIED,
    NOTHING_TO_COMPENSATE,
    VOIDED,
    Action,
    Compensation,
    Handler,
    Kind,
    Refusal,
    Rejected,
    TombstoneBody,
    TxT,
    decide,
    tombstone_body,
)
from repository_after.participant_kit.storage import ParticipantStore, Tx
from repository_after.service_layer.faults import FaultPoint
from repository_after.service_layer.ports import StorageError

logger = logging.getLogger(__name__)

Body = dict[str, Any]

__all__ = [
    "ALREADY_APPLIED",
    "NOTHING_TO_COMPENSATE",
    "VOIDED",
    "Action",
    "Compensation",
    "Kind",
    "Operations",
    "ParticipantService",
    "Refusal",
    "Rejected",
]

#: An operation's name is its route (`POST /<name>`): lower-case words joined by underscores.
OPERATION_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
#: Routes the kit's router owns; no operation may take their names.
RESERVED_NAMES = frozenset({"batch", "faults", "health"})


class Operations(Generic[TxT]):
    """A participant's operations: register with `action`, decide a call with `decide`."""

    def __init__(self, name: str, book: Book[TxT]) -> None:
        self.name = name
        self.book = book
        self._operations: dict[str, tuple[Kind, Action[TxT]]] = {}

    def action(
        self,
        name: str,
        model: type[BaseModel] | None,
        handler: Handler[TxT],
        *,
        compensation: Compensation[TxT] | None = None,
        settlement: str | None = None,
        tombstone: TombstoneBody = tombstone_body,
    ) -> Action[TxT]:
        """Register an action (its request `model`: None for a service that validates its
        bodies at its own edge and never calls `ParticipantService.parse`), its compensation
        and its settlement."""
        action = Action(name, model, handler, compensation, settlement, tombstone)
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
    def operations(self) -> Mapping[str, tuple[Kind, Action[TxT]]]:
        """Operation name -> its kind and the action it belongs to, in registration order."""
        return dict(self._operations)

    def decide(self, tx: TxT, operation: str, key: str, data: Body | None) -> Answer:
        """One call inside the caller's transaction (`rules.decide`); raises `Rejected`."""
        kind, action = self._operations[operation]
        return decide(tx, self.book, kind, action, operation, key, data)


class ParticipantService(Operations[Tx]):
    """A participant's operations over its store (the kit's SQL `Tx` and records). Register with
    `action`, then serve them with `http.participant_router` (or call `perform` directly)."""

    def __init__(self, name: str, store: ParticipantStore) -> None:
        super().__init__(name, SQL_BOOK)
        self.store = store
        self.faults = OperationFaults(name)  # none until `inject_faults`

    def action(
        self,
        name: str,
        model: type[BaseModel] | None,
        handler: Handler[Tx],
        *,
        compensation: Compensation[Tx] | None = None,
        settlement: str | None = None,
        tombstone: TombstoneBody = tombstone_body,
    ) -> Action[Tx]:
        """As `Operations.action`; the kit's edge validates every body, so a model is needed."""
        if model is None:
            raise ValueError(f"{name}: a kit service's action needs its request model")
        return super().action(
            name,
            model,
            handler,
            compensation=compensation,
            settlement=settlement,
            tombstone=tombstone,
        )

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
        assert action.model is not None  # `action` refuses a kit service's action without one
        return action.model.model_validate(raw)

    async def purge(self, *, before: str) -> int:
        """Drop this service's records created before `before` except those that fence
        (`retention.purge`: the tombstones among them), in one transaction; how many went.
        `before` must be at least the orchestrator's retry horizon ago."""
        operations = self.operations
        return await self.store.transaction(
            lambda tx: retention.purge(tx, operations, before=before)
        )

    def request_model(self, operation: str) -> type[BaseModel] | None:
        """The body's model (a compensation's or settlement's: its action's, and optional)."""
        return self._operations[operation][1].model

    async def check_health(self) -> bool:
        """Whether the store answers a read (`GET /health`)."""
        try:
            await self.store.read(lambda tx: tx.execute("SELECT 1"))
        except Exception:
            return False
        return True

    async def perform(self, operation: str, key: str, body: BaseModel | None) -> Answer:
        """Decide one call in one transaction (rules (a)-(f) above); never raises."""
        kind, action = self._operations[operation]
        data = None if body is None else body.model_dump(mode="json")
        point = self.faults.draw(operation, key)
        if point is FaultPoint.BEFORE:
            return error(500, "injected_fault", f"injected fault before the {operation}")

        def call(tx: Tx) -> Answer:
            return decide(tx, self.book, kind, action, operation, key, data)

        try:
            answer = await self.store.transaction(call)
        except Rejected as exc:
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
