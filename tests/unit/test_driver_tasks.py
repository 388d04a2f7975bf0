"""One driver per saga per process, also when a claim lands between a driver's end and the
callback that forgets it."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from repository_after.domain.saga import SagaState
from repository_after.service_layer.driver_tasks import DriverTasks
from repository_after.service_layer.saga_driver import SagaDriver


class CountingDriver:
    """Drives nothing: each drive waits for `go`, then ends."""

    def __init__(self) -> None:
        self.go = asyncio.Event()
        self.drives = 0

    async def drive(self, saga_id: str, fresh: Any = None) -> SagaState:
        self.drives += 1
        await self.go.wait()
        return cast(SagaState, saga_id)


async def test_a_claim_right_after_a_driver_ended_starts_a_new_driver() -> None:
    driver = CountingDriver()
    tasks = DriverTasks(cast(SagaDriver, driver))
    first = tasks.ensure("t-1")
    seen: list[asyncio.Task[SagaState]] = []

    async def claim_when_woken_with_the_driver() -> None:
        await driver.go.wait()  # woken in the same turn as the driver, after it
        seen.append(tasks.ensure("t-1"))

    claimer = asyncio.ensure_future(claim_when_woken_with_the_driver())
    await asyncio.sleep(0)  # both wait on `go`, the driver first
    driver.go.set()
    await claimer
    [second] = seen
    assert first.done()
    assert second is not first  # a finished task is no driver: the claim started one
    await second
    assert driver.drives == 2
    await asyncio.sleep(0)  # the done-callbacks of both tasks have run
    assert "t-1" not in tasks  # the first task's callback did not forget the second early...


async def test_the_first_drivers_late_callback_does_not_forget_its_successor() -> None:
    driver = CountingDriver()
    tasks = DriverTasks(cast(SagaDriver, driver))
    first = tasks.ensure("t-1")
    driver.go.set()
    await asyncio.sleep(0)  # the driver ends; its callback is scheduled, not run
    assert first.done()
    driver.go.clear()
    second = tasks.ensure("t-1")
    assert second is not first
    await asyncio.sleep(0)  # the first task's callback runs now
    assert "t-1" in tasks  # ...and the second, still running, is still known
    assert tasks.ensure("t-1") is second  # so no third driver starts beside it
    driver.go.set()
    await second
