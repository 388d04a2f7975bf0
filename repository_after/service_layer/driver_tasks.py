"""The driver tasks of this process: at most one per saga, each running `SagaDriver.drive`.

Invariant: one driver per saga per process. A second request to drive a saga joins the task
already running (`ensure`); a task removes itself when it ends, so a later request (an operator
retry, the next claim) starts a fresh driver that reads the log again. Callers that wait are
shielded (`drive`): a cancelled HTTP request must not cancel the saga's driver.
"""

from __future__ import annotations

import asyncio
from functools import partial

from repository_after.domain.saga import SagaState
from repository_after.service_layer.saga_driver import FreshSaga, SagaDriver


class DriverTasks:
    def __init__(self, driver: SagaDriver) -> None:
        self._driver = driver
        self._tasks: dict[str, asyncio.Task[SagaState]] = {}

    def __contains__(self, saga_id: object) -> bool:
        return saga_id in self._tasks

    def ensure(self, saga_id: str, fresh: FreshSaga | None = None) -> asyncio.Task[SagaState]:
        """The saga's driver task, started if none runs."""
        task = self._tasks.get(saga_id)
        # A task that has finished but whose done-callback has not run yet is no driver: a
        # claim landing in that window must start a new one, or the saga sits leased, undriven.
        if task is None or task.done():
            task = asyncio.create_task(self._driver.drive(saga_id, fresh), name=f"saga-{saga_id}")
            self._tasks[saga_id] = task
            task.add_done_callback(partial(self._forget, saga_id))
        return task

    def _forget(self, saga_id: str, task: asyncio.Task[SagaState]) -> None:
        if self._tasks.get(saga_id) is task:  # not the driver that replaced it
            del self._tasks[saga_id]

    async def drive(self, saga_id: str) -> SagaState:
        """Drive the saga until it is terminal or parked (joining a driver already running)."""
        return await asyncio.shield(self.ensure(saga_id))

    async def wait(self, saga_id: str, timeout: float) -> bool:
        """True if the saga's driver finished within `timeout` seconds (or none runs)."""
        task = self._tasks.get(saga_id)
        if task is None:
            return True
        done, _ = await asyncio.wait({task}, timeout=timeout)
        return bool(done)

    async def outcome(self, saga_id: str, timeout: float) -> SagaState | None:
        """The state the saga's driver ends with, if it ends within `timeout` seconds; None if
        no driver runs here, it is still running, or it failed."""
        task = self._tasks.get(saga_id)
        if task is None or not await self.wait(saga_id, timeout):
            return None
        if task.cancelled() or task.exception() is not None:
            return None
        return task.result()

    async def cancel_all(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
