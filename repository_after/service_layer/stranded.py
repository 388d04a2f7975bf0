"""The sweep that parks the sagas no running server drives (a version nobody registers any more).

Claims take only the sagas a server can drive (`SagaLog.claim(drivable=...)`), so a saga whose
(name, version, shape) no running server registers is never claimed again: nothing would move it
and nobody would see it. Every worker therefore sweeps, about once per lease ttl: one pass asks
the log (`SagaLog.stranded`) for at most `batch` unsettled sagas that started under a key this
server does not register, that nobody holds, and whose last event is older than the grace by
the log's clock (`SagaLog.now`, the one leases expire on), longest idle first, and drives each
through `Unresumable.handle` (`resumption`), as any request for it would be. That takes the
saga's lease (a fenced `acquire`: never a saga another worker holds), reads it again under the
lease and judges again on what the last holder wrote, then parks it with the reason, in one
write that also releases the lease; a saga that made progress meanwhile is given back untouched.

Why the grace and not at once: the sweeping server cannot tell whether another running server
registers the saga's version. One that does claims it as soon as its lease is free and makes
progress (an event) within seconds, so a saga free and idle longer than the grace (longer than
the lease ttl, 10 ttls by default) has had no server that can drive it for that long. Two
sweepers meeting on one saga: one acquires, the other's acquire fails and it leaves the saga.
The bound per pass (`batch`) keeps a pass short whatever the backlog; the next pass continues.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from repository_after.domain.saga import SagaStatus
from repository_after.service_layer.driver_tasks import DriverTasks
from repository_after.service_layer.saga_ports import DefinitionKey, SagaLog

#: Sagas one pass looks at, at most.
SWEEP_BATCH = 100


class StrandedSweep:
    def __init__(
        self,
        *,
        log: SagaLog,
        drivers: DriverTasks,
        drivable: frozenset[DefinitionKey],
        grace: float,
        batch: int = SWEEP_BATCH,
    ) -> None:
        """`drivable`: the keys this server registers; `grace`: seconds without progress
        (`unknown_version_grace`)."""
        self._log = log
        self._drivers = drivers
        self._drivable = drivable
        self._grace = grace
        self.batch = batch

    async def sweep(self) -> list[str]:
        """One pass: park up to `batch` stranded sagas; returns the ids of those it found that
        are parked once it is done (another sweeper may have parked one at the same time)."""
        idle_before = await self._log.now() - timedelta(seconds=self._grace)
        ids = await self._log.stranded(
            drivable=self._drivable,
            idle_before=idle_before.isoformat(timespec="microseconds"),
            limit=self.batch,
        )
        # Through the driver tasks: a saga this process is already driving is joined, not
        # driven twice.
        states = await asyncio.gather(*(self._drivers.drive(i) for i in ids))
        parked = SagaStatus.FAILED_NEEDS_ATTENTION
        return [i for i, s in zip(ids, states, strict=True) if s.status == parked]
