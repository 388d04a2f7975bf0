"""The account service's operations on the participant kit's edge (`participant_kit.http`).

`/debit`, `/credit`, `/compensate_debit`, `/void_credit` and `/batch` are the kit's router over
`AccountEdge`, so the account service and every kit participant share one edge: the service
token's check (before the body is read: a refused call records nothing), the `transaction-id`
header's, the body's JSON and its validation, `Idempotent-Replayed`, and `/batch` observed item
by item (a span per item, replays counted under the single route, log lines with the item's
transaction id). What is the account service's own stays here:
- `parse`: its strict wire schemas (`OperationIn`, `SettlementIn`: no "10" or 1.0 or true as an
  amount), also for the OpenAPI document, with `OperationOut` as every operation's answer;
- `perform`: its one use case, `account_operations.perform_operation` (`/credit`'s injected
  fault, reconfigured by `PUT /admin/faults`; the "served" log line), whose raised errors are
  answered here through the one error table (`errors.answer_for`: a business refusal, the
  injected fault, 503 for storage), so that `perform` never raises, as the kit's.
The store and the fault injector exist from the app's lifespan on (`bind`); a call before that
or after the shutdown is answered 503 `storage_unavailable`, as a hosted participant's.
The token is the running process's (`Settings.service_token` of the app being built).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import APIRouter
from pydantic import BaseModel

from repository_after.config import Settings
from repository_after.domain.accounts import MAX_BATCH, Operation, OperationRequest
from repository_after.domain.errors import BusinessError
from repository_after.entrypoints.errors import answer_for
from repository_after.entrypoints.schemas import OperationIn, OperationOut, SettlementIn
from repository_after.observability.telemetry import Telemetry
from repository_after.participant_kit.http import EdgeHooks, participant_router
from repository_after.participant_kit.records import Answer, error
from repository_after.participant_kit.rules import Action, Kind
from repository_after.service_layer import accounts
from repository_after.service_layer.account_operations import InjectedFault, perform_operation
from repository_after.service_layer.faults import FaultInjector
from repository_after.service_layer.ports import AccountStore, StorageError

logger = logging.getLogger(__name__)

_MODELS: dict[str, type[BaseModel]] = {
    Operation.DEBIT.value: OperationIn,
    Operation.CREDIT.value: OperationIn,
    Operation.COMPENSATE_DEBIT.value: SettlementIn,
    Operation.VOID_CREDIT.value: SettlementIn,
}


class AccountEdge:
    """The account service as the kit's router sees it (`participant_kit.http.Served`)."""

    name = accounts.OPERATIONS.name

    def __init__(self) -> None:
        self._store: AccountStore | None = None
        self._faults: FaultInjector | None = None

    def bind(self, store: AccountStore, faults: FaultInjector) -> None:
        self._store, self._faults = store, faults

    def unbind(self) -> None:
        self._store = self._faults = None

    @property
    def operations(self) -> Mapping[str, tuple[Kind, Action[Any]]]:
        return accounts.OPERATIONS.operations

    def request_model(self, operation: str) -> type[BaseModel] | None:
        return _MODELS[operation]

    def parse(self, operation: str, raw: object) -> BaseModel | None:
        """The strict wire schema's; a settlement may come without a body (None)."""
        model = _MODELS[operation]
        if raw is None and model is SettlementIn:
            return None
        return model.model_validate(raw)

    async def perform(self, operation: str, key: str, body: BaseModel | None) -> Answer:
        """`perform_operation`'s answer, or the error table's answer to what it raised."""
        store, faults = self._store, self._faults
        if store is None or faults is None:
            return error(503, "storage_unavailable", "storage is unavailable; retry later")
        request = OperationRequest(
            Operation(operation),
            key,
            getattr(body, "account_id", None),
            getattr(body, "amount", None),
        )
        try:
            return await perform_operation(store=store, faults=faults, request=request)
        except (BusinessError, InjectedFault, StorageError) as exc:
            reply = answer_for(exc)  # the table knows all three (and logs a storage failure)
            assert reply is not None
            return Answer(reply.status_code, orjson.dumps(reply.body))
        except Exception:
            logger.exception("%s for key %r failed", operation, key)
            return error(500, "internal_error", "internal error")

    async def check_health(self) -> bool:
        if self._store is None:
            return False
        try:
            await self._store.read(lambda reader: reader.get_account(""))
        except StorageError:
            return False
        return True


def edge_hooks(telemetry: Telemetry) -> EdgeHooks:
    """What this app observes of every kit router's batches it serves (the account service's
    and the hosted participants'): its tracer, and its replay counter by route."""
    replays = telemetry.http_metrics.replays_by
    return EdgeHooks(tracer=telemetry.tracer, on_replay=lambda route: replays(route).inc())


def account_router(edge: AccountEdge, settings: Settings, telemetry: Telemetry) -> APIRouter:
    """The kit's router over `edge`: the process's service token, its telemetry's hooks; no
    `/health` (the app has its own, for every role)."""
    return participant_router(
        edge,
        token=settings.service_token,
        hooks=edge_hooks(telemetry),
        response_models=dict.fromkeys(_MODELS, OperationOut),
        max_batch=MAX_BATCH,
        health=False,
    )
