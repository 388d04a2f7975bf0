"""`SagaRunner`: run, resume and inspect sagas of Python callables, in this process.

    async with SagaRunner([order], log="sagas.db") as runner:
        view = await runner.run(order, OrderParams(...), saga_id="order-42")
        ...
        await runner.recover()            # after a crash: every saga the log left unsettled
        view = await runner.inspect("order-42")

It is the service's engine, not a second one: an `Orchestrator` (write-ahead driver, leases,
retry policies, recovery, operator actions) on a `SagaLog`, whose participant is the
in-process `LocalParticipant`. So the guarantees are the service's (docs/sagas.md): the intent
of every call is durable before the call, a crash at any instant resumes from the log, and a
call whose outcome was not logged is made again with the same key, which is why a side effect
must be keyed by `StepContext.key` to happen once (docs/library.md).

The log: a file path is a SQLite saga log (WAL, synchronous=FULL: a logged event survives
SIGKILL and power loss); `memory://` an in-memory one (tests); any other URL what
`bootstrap.build_saga_log` makes of it (PostgreSQL, MariaDB), imported only then (the service's
composition root pulls in the web stack, a second of start-up that a library does not need);
or a `SagaLog` object. The runner closes the log it holds.

The worker id names this process's leases. By default it is stable per host
(`<host>:sagabank-library`), so a process restarted after a crash takes its predecessor's sagas
at once (`recover`). Several processes sharing one log each need their own id: a saga leased to
another id is left alone until its lease (`lease_ttl`) expires.
On entry (`async with`) the log's unfinished sagas are checked against the registered
definitions: a saga that started under another shape of a registered version refuses the start
(`DefinitionsChanged`: a changed saga needs a new `version`).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from pydantic import BaseModel

from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.adapters.sqlite_saga_log import SqliteSagaLog
from repository_after.library.definition import Saga
from repository_after.library.participant import LocalParticipant
from repository_after.library.views import SagaView, saga_view
from repository_after.service_layer.orchestrator import Observer, Orchestrator, log_transition
from repository_after.service_layer.retry import RetryPolicy
from repository_after.service_layer.saga_ports import SagaLog, SagaSummary
from repository_after.service_layer.saga_types import SagaTypes, check_log_versions

logger = logging.getLogger(__name__)

#: Actions: a few quick retries of an unknown outcome, then the saga's rules decide.
FORWARD = RetryPolicy(max_attempts=5, initial_backoff=0.05, max_backoff=1.0, attempt_timeout=30)
#: Compensations and settlements: retried longer (a saga that cannot undo parks).
SETTLE = RetryPolicy(
    max_attempts=10, initial_backoff=0.05, max_backoff=2.0, attempt_timeout=30, deadline=60
)


def open_log(where: str | os.PathLike[str] | SagaLog) -> SagaLog:
    """The saga log at `where` (see the module docstring)."""
    if not isinstance(where, str | os.PathLike):
        return where
    text = os.fspath(where)
    if text == "memory://":
        return InMemorySagaLog()
    if "://" in text:
        from repository_after.bootstrap import build_saga_log

        return build_saga_log(text)
    return SqliteSagaLog(Path(text))


class SagaRunner:
    def __init__(
        self,
        sagas: Iterable[Saga[Any]],
        *,
        log: str | os.PathLike[str] | SagaLog,
        worker_id: str | None = None,
        forward: RetryPolicy = FORWARD,
        settle: RetryPolicy = SETTLE,
        lease_ttl: float = 30.0,
        observers: Sequence[Observer] = (log_transition,),
    ) -> None:
        """`sagas`: every saga (and every version of one) this process runs and resumes; new
        sagas of a name start on its highest version. `forward`: the retry policy of actions;
        `settle`: of compensations and settlements."""
        self._sagas = list(sagas)
        self._types = SagaTypes()
        for saga in self._sagas:
            self._types.register(saga.definition(), saga.params)
        names = [saga.name for saga in self._sagas]
        self._versioned = {name for name in names if names.count(name) > 1}
        self.log = open_log(log)
        self._orchestrator = Orchestrator(
            log=self.log,
            participant=LocalParticipant(self._sagas),
            definitions=self._types.definitions(),
            versions=self._types,
            forward=forward,
            settle=settle,
            observers=observers,
            worker_id=worker_id or f"{socket.gethostname()}:sagabank-library",
            lease_ttl=lease_ttl,
        )

    async def __aenter__(self) -> SagaRunner:
        try:
            for line in await check_log_versions(self.log, self._types):
                logger.warning("unfinished sagas this process does not register: %s", line)
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def run(
        self,
        saga: Saga[Any] | str,
        params: BaseModel | Mapping[str, Any],
        *,
        saga_id: str | None = None,
    ) -> SagaView:
        """Start a saga and drive it until it is terminal or parked; its view.

        `saga_id` makes the run idempotent: the same id with the same parameters joins or
        resumes that saga instead of starting another (`IdempotencyKeyReused` for other ones).
        A new id is generated without one. `params` are validated by the saga's model
        (`pydantic.ValidationError`) before anything is logged."""
        name = saga if isinstance(saga, str) else saga.name
        raw = params.model_dump() if isinstance(params, BaseModel) else params
        data = self._types.parameters(name, raw)
        saga_id, state = await self._orchestrator.run(name, data, saga_id=saga_id)
        definition = self._types.latest(name)
        if name in self._versioned:  # an existing id may have resumed under an older version
            stored = await self.log.summary(saga_id)
            if stored is not None:
                definition = self._types.version(name, stored.definition_version)
        return saga_view(saga_id=saga_id, definition=definition, params=data, state=state)

    async def recover(self) -> dict[str, int]:
        """Drive every saga the log left unsettled (a crash, a lost lease) to a terminal or
        parked status; returns how many ended in each status."""
        return await self._orchestrator.recover()

    async def inspect(self, saga_id: str) -> SagaView:
        """The saga as the log has it (`SagaNotFound` if there is none)."""
        stored = await self._orchestrator.get(saga_id)
        definition = self._types.version(stored.definition, stored.definition_version)
        state = self._orchestrator.state_of(stored)
        return saga_view(saga_id=saga_id, definition=definition, params=stored.params, state=state)

    async def list(
        self, *, status: str | None = None, saga: str | None = None, limit: int = 100
    ) -> list[SagaSummary]:
        """The newest sagas first (only those in `status`, of the saga named `saga`)."""
        return await self.log.list_recent(status=status, definition=saga, limit=limit)

    async def retry(self, saga_id: str, *, note: str | None = None) -> SagaView:
        """Resume a parked saga where it stopped (an operator fixed the cause)."""
        await self._orchestrator.retry(saga_id, note=note)
        return await self.inspect(saga_id)

    async def resolve(self, saga_id: str, *, note: str | None = None) -> SagaView:
        """Close a parked saga by hand (`resolved`): an operator settled it outside."""
        await self._orchestrator.resolve(saga_id, note=note)
        return await self.inspect(saga_id)

    async def close(self) -> None:
        """Stop the drivers (their leases released) and close the log."""
        await self._orchestrator.close()
        await self.log.close()
