"""The engine's `Participant`, in process: each (service, operation) is a registered callable.

Outcome classification, the library's counterpart of the HTTP participant's status codes:
- the callable returns         -> SUCCEEDED; an action's return value is the answer's `result`
                                  (a later step reads it; it must be JSON data), a settlement's
                                  True / False the status word `already_applied` / `voided`
                                  (anything else, None included, decides nothing: UNKNOWN);
- it raises `Refused`          -> REJECTED: a definite "no", never retried;
- any other exception, or the  -> UNKNOWN: the engine retries it with the same key, then
  call outlasts its timeout       settles, compensates or parks it as for a lost answer;
                                  logged here with its traceback (the engine logs only a line).
A result that is not JSON data is an UNKNOWN outcome too (the action may have landed, but its
answer cannot be logged for the steps that read it). Nothing here raises for a step's failure.
A synchronous callable runs on the event loop's thread (no timeout can interrupt it); an async
one runs under `asyncio.timeout` (the policy's `attempt_timeout`).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Iterable
from typing import Any, NamedTuple

import orjson

from repository_after.domain.saga import Outcome
from repository_after.library.definition import (
    ACT,
    COMPENSATE,
    SETTLE,
    Action,
    Refused,
    Saga,
    Settle,
    step_context,
)
from repository_after.service_layer.saga_ports import CallResult

logger = logging.getLogger(__name__)

_LANDED = {True: "already_applied", False: "voided"}


class _Target(NamedTuple):
    saga: Saga[Any]
    step: str
    role: str
    fn: Action | Settle


class LocalParticipant:
    def __init__(self, sagas: Iterable[Saga[Any]]) -> None:
        self._targets: dict[tuple[str, str], _Target] = {}
        for saga in sagas:
            for h in saga.handlers:
                for role, fn in ((ACT, h.action), (COMPENSATE, h.compensate), (SETTLE, h.settle)):
                    if fn is not None:
                        self._targets[saga.service, f"{h.name}/{role}"] = _Target(
                            saga, h.name, role, fn
                        )

    async def call(
        self,
        *,
        service: str,
        operation: str,
        transaction_id: str,
        body: dict[str, Any],
        timeout: float,
    ) -> CallResult:
        target = self._targets.get((service, operation))
        if target is None:  # the definitions and the callables are registered together
            return CallResult(Outcome.UNKNOWN, error=f"no callable for {service} {operation}")
        try:
            ctx = step_context(target.saga, step=target.step, key=transaction_id, body=body)
            value = target.fn(ctx)
            if inspect.isawaitable(value):
                async with asyncio.timeout(timeout):
                    value = await value
            if target.role == SETTLE:
                if not isinstance(value, bool):  # None (a forgotten `return`) is no "voided"
                    raise TypeError(f"a settle callable answers True or False, not {value!r:.80}")
                return CallResult(Outcome.SUCCEEDED, body={"status": _LANDED[value]})
            orjson.dumps(value)  # what the log will store (TypeError if it cannot)
        except Refused as exc:
            return CallResult(Outcome.REJECTED, error=str(exc) or type(exc).__name__)
        except Exception as exc:
            logger.warning(
                "saga step %s %s under key %s: outcome unknown",
                service,
                operation,
                transaction_id,
                exc_info=True,
                extra={"transaction_id": transaction_id},
            )
            return CallResult(Outcome.UNKNOWN, error=f"{type(exc).__name__}: {exc}")
        return CallResult(Outcome.SUCCEEDED, body={"result": value})
