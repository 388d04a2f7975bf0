"""`ChoreographedOrchestrator`: the orchestrator's public face, with nobody driving.

Everything that reads sagas (views, listings, `GET /transfers/{id}`, the dashboard) is the
orchestrator's, unchanged: the tracker keeps the same log. What differs:
- `start` validates as the orchestrator does (definition, id length, a reused id with another
  request), then creates the saga (`started` and its first call's intent) AND writes its first
  call message to the log's outbox, in one transaction (`LogOutbox.create`); nothing is called
  from here;
- `wait` / `outcome` / `drive` watch the log until the saga is at rest (the tracker writes it),
  `drive` and `retry` for `wait_limit` seconds at most;
- `retry` / `resolve` are the tracker's (redrive a dead letter, or send the next call again);
- `recover`, `claim` and `work` drive nothing: there is no driver to recover (a silent saga is
  timed out by the tracker instead), so they only say so.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Coroutine, Mapping
from typing import Any

from repository_after.choreography.course import Course, Kind
from repository_after.choreography.log_outbox import LogOutbox
from repository_after.choreography.tracker import Tracker
from repository_after.config import ConfigurationError
from repository_after.domain import choreography
from repository_after.domain.errors import IdempotencyKeyReused, TransactionIdTooLong
from repository_after.domain.ids import MAX_TRANSACTION_ID
from repository_after.domain.saga import AT_REST, SagaDefinition, SagaState
from repository_after.service_layer.clock import utc_now
from repository_after.service_layer.orchestrator import Orchestrator
from repository_after.service_layer.transitions import notify

#: How often a waiting request reads the saga's status back.
POLL = 0.02
PUBLISHER = "api"


class ChoreographyOnly(ConfigurationError):
    """An orchestration-only action (`sagabank recover`) asked of a choreographed deployment: a
    sentence and exit 2 (`cli.main`), not a traceback."""


class ChoreographedOrchestrator(Orchestrator):
    def __init__(
        self, *, outbox: LogOutbox, tracker: Tracker, wait_limit: float = 30.0, **kwargs: Any
    ) -> None:
        """`wait_limit`: how long `retry` and `drive` watch a saga at most (the services may be
        down: an operator's `sagas retry` outside `serve` only writes the retry, which the
        services take up when they run)."""
        super().__init__(log=outbox.log, **kwargs)
        self.outbox = outbox
        self.tracker = tracker
        self.wait_limit = wait_limit

    async def start(
        self, definition: str, params: dict[str, Any], *, saga_id: str | None = None
    ) -> tuple[str, bool]:
        saga = self._definition_for(definition)
        if not saga_id:
            saga_id = uuid.uuid4().hex
        elif len(saga_id) > (longest := saga.max_saga_id_length(MAX_TRANSACTION_ID)):
            raise TransactionIdTooLong(
                f"a saga of type {definition!r} takes a transaction id of at most {longest} "
                f"characters: its keys add up to {MAX_TRANSACTION_ID - longest} to it, and a "
                f"participant accepts keys of at most {MAX_TRANSACTION_ID}"
            )
        first = choreography.start(saga, at=utc_now(), publisher=PUBLISHER)
        assert first.next_call is not None  # a definition has at least one step
        course = Course.of(saga_id, saga, params, first.history, Kind.CALL)
        created = await self.outbox.create(
            saga_id=saga_id,
            definition=definition,
            definition_version=saga.version,
            definition_hash=saga.shape_hash(),
            params=params,
            events=first.history,
            status=first.state.status,
            message=course.message(service=first.next_call.step.service, publisher=PUBLISHER),
        )
        if created is not None:
            notify(
                self._observers,
                saga_id,
                saga.name,
                first.history[-1],
                "started",
                first.state.status,
            )
            return saga_id, True
        existing = await self.log.summary(saga_id)
        assert existing is not None
        if existing.definition != definition or existing.params != params:
            raise IdempotencyKeyReused(
                f"transaction id {saga_id!r} was already used for a different request"
            )
        return saga_id, False

    def _definition_for(self, name: str) -> SagaDefinition:
        definitions: Mapping[str, SagaDefinition] = self._definitions
        if name not in definitions:
            raise KeyError(f"unknown saga definition {name!r}")
        return definitions[name]

    async def _settled(self, saga_id: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            summary = await self.log.summary(saga_id)
            if summary is not None and summary.status in AT_REST:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(POLL)

    def wait(self, saga_id: str, timeout: float) -> Coroutine[Any, Any, bool]:
        return self._settled(saga_id, timeout)

    async def outcome(self, saga_id: str, timeout: float) -> SagaState | None:
        """None: the caller shows what the log holds, after at most `timeout` seconds."""
        await self._settled(saga_id, timeout)
        return None

    async def _drive(self, saga_id: str) -> SagaState:
        """The saga once at rest, or as it stands after `wait_limit` seconds."""
        await self._settled(saga_id, self.wait_limit)
        return self.state_of(await self.get(saga_id))

    def drive(self, saga_id: str) -> Coroutine[Any, Any, SagaState]:
        return self._drive(saga_id)

    async def retry(self, saga_id: str, *, note: str | None = None, wait: bool = True) -> SagaState:
        state = await self.tracker.retry(saga_id, note=note)
        return await self._drive(saga_id) if wait else state

    async def resolve(self, saga_id: str, *, note: str | None = None) -> SagaState:
        return await self.tracker.resolve(saga_id, note=note)

    async def close(self) -> None:
        try:
            await super().close()
        finally:
            try:
                await self.tracker.close()
            finally:
                await self.outbox.close()  # its own pool on PostgreSQL, whatever failed above

    async def recover(self, *, take_over: bool = False) -> dict[str, int]:
        del take_over
        raise ChoreographyOnly(
            "in choreography nothing drives sagas to recover: the tracker times out silent "
            "ones (docs/choreography.md)"
        )

    async def claim(self, *, include_own: bool = False) -> list[str]:
        del include_own
        return []

    async def work(self, *, interval: float) -> None:
        """Nothing to claim: the tracker's loop (`runtime`) watches the sagas."""
        del interval
        await asyncio.Event().wait()
