"""The worker loop: renew the leases held and claim free sagas, every interval; sweep stranded ones.

Claims take only the sagas of the definitions this server registers (`drivable`, the keys of its
registry): a saga of another version (a rolling upgrade) is left to the servers that register it,
never held here for a ttl in their place. About once per lease ttl the loop also runs the sweep
(`stranded`), which parks the sagas nobody can drive once they have made no progress for the
grace; `recover` runs it after its claims, until a pass finds less than a batch.

Its first claim is crash recovery: it also takes the sagas still leased under this worker's id
(`include_own`), left by a previous process with the same stable id, without waiting for their
leases to expire. Once such a claim has taken fewer sagas than it could, none of those is left,
and later claims no longer ask for them: a saga leased under this id from then on is one this
process dropped on purpose (a lease `recover --take-over` took back from a worker that holds it
again, left to lapse), which it must not take back before the ttl. Invariants: at most
`max_sagas` leases are held at once; a lease found lost at renewal is only logged (its driver
stops at its next step with LeaseLost); a failed round (a database hiccup) is logged and the
loop carries on, since the next round repeats it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
from collections.abc import Collection

from repository_after.domain.saga import AT_REST, SagaStatus
from repository_after.service_layer.driver_tasks import DriverTasks
from repository_after.service_layer.leases import LeaseBook
from repository_after.service_layer.saga_ports import DefinitionKey
from repository_after.service_layer.stranded import StrandedSweep
from repository_after.service_layer.transitions import LOGGER_NAME

logger = logging.getLogger(LOGGER_NAME)


class Worker:
    def __init__(
        self,
        *,
        leases: LeaseBook,
        drivers: DriverTasks,
        max_sagas: int,
        drivable: frozenset[DefinitionKey],
        sweep: StrandedSweep,
    ) -> None:
        self._leases = leases
        self._drivers = drivers
        self._max_sagas = max_sagas
        self._drivable = drivable
        self._sweep = sweep
        self._own_taken = False  # every saga a previous process left under this id is taken

    async def claim(self, *, include_own: bool = False, take_over: bool = False) -> list[str]:
        """Renew the leases this worker holds, then claim and start driving free sagas
        (with `take_over`, leased ones too: see `SagaLog.claim`)."""
        ids = await self._take(include_own=include_own, take_over=take_over)
        for saga_id in ids:
            self._drivers.ensure(saga_id)
        return ids

    async def _take(
        self, *, include_own: bool, take_over: bool, exclude: Collection[str] = ()
    ) -> list[str]:
        """`claim` without starting the drivers; never takes the sagas in `exclude`."""
        for saga_id in await self._leases.renew():
            # Its driver stops at its next step (LeaseLost); nothing to cancel here.
            logger.warning(
                "saga %s: lease lost (LeaseLost) to another worker",
                saga_id,
                extra={"transaction_id": saga_id},
            )
        room = self._max_sagas - len(self._leases)
        if room <= 0:
            return []
        include_own = include_own and not self._own_taken
        leases = await self._leases.claim(
            limit=room,
            include_own=include_own,
            take_over=take_over,
            drivable=self._drivable,
            exclude=exclude,
        )
        if include_own and len(leases) < room:
            self._own_taken = True
        if include_own:
            logger.info("recovery: %d unsettled saga(s) claimed", len(leases))
        elif leases:
            logger.info("claimed %d saga(s) with free or expired leases", len(leases))
        return [lease.saga_id for lease in leases]

    async def recover(self, *, take_over: bool = False) -> dict[str, int]:
        """Claim and drive every unsettled saga this server can drive, batch after batch, then
        park the stranded ones (`stranded`); final status counts."""
        counts: dict[str, int] = {}
        seen: set[str] = set()  # claimed in this pass
        left: set[str] = set()  # of those, the ones still unsettled: excluded from later claims
        # Each batch is driven to the end before the next claim, and each saga once. A saga
        # driven and left unsettled (its version is not registered here, or it was lost to
        # another worker) stays leased under this worker's id, unrenewed: `include_own` and
        # `take_over` would hand it back, and a batch of nothing else would end the pass with
        # sagas it can drive still behind (or take it again and again from a server that has its
        # version). So later claims exclude it, and each brings sagas the pass has not seen;
        # `left` holds only unsettled ones (a settled saga is never claimed), so the claims stay
        # small after a big recovery. One the pass settled that is unsettled again (an operator's
        # retry) is not driven twice: it joins `left`, its new lease unrenewed for the worker
        # loop. Every round grows `seen` or `left`, or ends the pass: it ends, whatever the log.
        while True:
            claimed = await self._take(include_own=True, take_over=take_over, exclude=left)
            again = seen.intersection(claimed)
            for saga_id in again:
                self._leases.forget(saga_id)
            ids = [i for i in claimed if i not in seen]
            if not ids and again <= left:
                break
            left |= again
            seen.update(ids)
            states = await asyncio.gather(*(self._drivers.drive(i) for i in ids))
            for saga_id, state in zip(ids, states, strict=True):
                counts[str(state.status)] = counts.get(str(state.status), 0) + 1
                if state.status not in AT_REST:
                    left.add(saga_id)
        parked_status = str(SagaStatus.FAILED_NEEDS_ATTENTION)
        while parked := await self._sweep.sweep():
            counts[parked_status] = counts.get(parked_status, 0) + len(parked)
            if len(parked) < self._sweep.batch:
                break
        return counts

    async def work(self, *, interval: float) -> None:
        """Recovery first, then renew and claim every `interval` seconds, and sweep once every
        lease ttl (rounded up to whole rounds; the first round sweeps), until cancelled."""
        recovered = False
        sweep_every = max(1, math.ceil(self._leases.ttl / interval))
        for round_ in itertools.count():  # ends when cancelled
            try:
                await self.claim(include_own=not recovered)
                recovered = True
            except Exception as exc:  # a database hiccup must not end the loop
                logger.warning("lease maintenance failed: %s", exc)
            if round_ % sweep_every == 0:
                try:
                    await self._sweep.sweep()
                except Exception as exc:  # nor must one in the sweep: the next one repeats it
                    logger.warning("sweep of stranded sagas failed: %s", exc)
            await asyncio.sleep(interval)
