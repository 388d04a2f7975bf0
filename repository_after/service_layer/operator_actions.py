"""Operator actions on a parked saga: `retry` (resume it) and `resolve` (close it by hand).

Each is one event appended under the saga's lease, like any driver write. Invariants: an unknown
saga is SagaNotFound before anything else; a saga another worker holds is refused (it is being
driven; the operator tries again later); the log is read only after the lease is taken, so
nobody else writes in between; a lease taken for a refused action (e.g. the saga is not parked)
is given back at once, or the saga would be stranded until it expired. After a retry the saga is
driven again here; after a resolve the lease is released unless a driver of this process runs.
"""

from __future__ import annotations

from repository_after.domain.saga import (
    EventKind,
    InvalidTransition,
    SagaEvent,
    SagaState,
    replay,
)
from repository_after.service_layer.clock import utc_now as _now
from repository_after.service_layer.driver_tasks import DriverTasks
from repository_after.service_layer.leases import LeaseBook
from repository_after.service_layer.resumption import DefinitionLookup, definition_of
from repository_after.service_layer.saga_driver import SagaDriver


class OperatorActions:
    def __init__(
        self,
        *,
        driver: SagaDriver,
        drivers: DriverTasks,
        leases: LeaseBook,
        versions: DefinitionLookup,
    ) -> None:
        self._driver = driver
        self._drivers = drivers
        self._leases = leases
        self._versions = versions

    async def retry(self, saga_id: str, *, note: str | None = None, wait: bool = True) -> SagaState:
        """Resume a parked saga; with `wait=False` return once it is resumed, still driving."""
        state = await self._record(saga_id, EventKind.OPERATOR_RETRY, note)
        if not wait:
            self._drivers.ensure(saga_id)
            return state
        return await self._drivers.drive(saga_id)

    async def resolve(self, saga_id: str, *, note: str | None = None) -> SagaState:
        return await self._record(saga_id, EventKind.OPERATOR_RESOLVE, note)

    async def _record(self, saga_id: str, kind: EventKind, note: str | None) -> SagaState:
        await self._driver.load(saga_id)  # SagaNotFound (404) before anything else
        acquired = saga_id not in self._leases
        if acquired and await self._leases.acquire(saga_id) is None:
            raise InvalidTransition(
                f"saga {saga_id} is being driven by another worker; try again later"
            )
        try:
            stored = await self._driver.load(saga_id)  # read under the lease: nobody else writes
            definition = definition_of(self._versions, stored)
            state = replay(definition, stored.events)
            event = SagaEvent(kind, at=_now(), note=note)
            state = await self._driver.save(saga_id, definition, state, [event])
        except BaseException:
            if acquired:  # e.g. InvalidTransition: a lease nobody drives would strand the saga
                await self._leases.release(saga_id)
            raise
        if kind is not EventKind.OPERATOR_RETRY and saga_id not in self._drivers:
            await self._leases.release(saga_id)
        return state
