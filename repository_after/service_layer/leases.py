"""The saga leases one orchestrator worker holds (see `saga_ports` for the log's side).

Invariants: a saga is in the book only while this worker believes it holds the lease; each entry
remembers the `time.monotonic()` until which the lease surely holds (taken *before* the database
call that set it, so the estimate errs short). `current` is the guard before every remote call
and log write: past that time the lease is renewed first, and a lease found lost is dropped and
reported as `LeaseLost`, so a worker that was paused stops instead of acting on a stale view.

A driver acts under the lease its view of the log was built under. This worker may re-lease a
saga it is driving (its start-up claim also takes sagas leased under its own id): every grant
bumps the fence by one, so a lease whose fence is the next one is a *direct successor*, and
nothing but this worker can have written between the two; the driver adopts it (`current`,
`successor`). A lease further ahead means another worker held the saga meanwhile: `current`
refuses it to the driver (`LeaseLost`), which then reads the log again under the new lease.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Collection

from repository_after.service_layer.saga_ports import DefinitionKey, Lease, LeaseLost, SagaLog

logger = logging.getLogger(__name__)


class LeaseBook:
    def __init__(self, log: SagaLog, *, owner: str, ttl: float) -> None:
        self._log = log
        self.owner = owner
        self.ttl = ttl
        self._held: dict[str, tuple[Lease, float]] = {}

    def __contains__(self, saga_id: object) -> bool:
        return saga_id in self._held

    def __len__(self) -> int:
        return len(self._held)

    async def take(self, get: Callable[[], Awaitable[Lease | None]]) -> Lease | None:
        """Record the lease `get` obtains from the log (create, acquire), if any."""
        since = time.monotonic()
        lease = await get()
        if lease is not None:
            self._hold(lease, since + self.ttl)
        return lease

    async def acquire(self, saga_id: str) -> Lease | None:
        return await self.take(lambda: self._log.acquire(saga_id, self.owner, ttl=self.ttl))

    async def claim(
        self,
        *,
        limit: int,
        include_own: bool,
        take_over: bool = False,
        drivable: Collection[DefinitionKey] | None = None,
        exclude: Collection[str] = (),
    ) -> list[Lease]:
        """`SagaLog.claim` under this worker's name and ttl (`drivable`: the keys it can drive;
        `exclude`: ids never taken)."""
        since = time.monotonic()
        leases = await self._log.claim(
            self.owner,
            limit=limit,
            ttl=self.ttl,
            drivable=drivable,
            include_own=include_own,
            take_over=take_over,
            exclude=exclude,
        )
        for lease in leases:
            self._hold(lease, since + self.ttl)
        return leases

    def _hold(self, lease: Lease, until: float) -> None:
        held = self._held.get(lease.saga_id)
        # A create and the start-up claim of the same saga may finish in either order: the
        # lease with the higher fence is the one the log honours, never replace it by an older.
        if held is None or held[0].fence <= lease.fence:
            self._held[lease.saga_id] = (lease, until)

    def forget(self, saga_id: str, lease: Lease | None = None) -> None:
        """Stop renewing (the lease expires on its own and the saga is claimed again).

        With `lease`, only if that is still the one held: a newer lease this worker took meanwhile
        (the start-up claim re-leases its own sagas) must survive a stale one being refused."""
        held = self._held.get(saga_id)
        if held is not None and (lease is None or held[0] == lease):
            del self._held[saga_id]

    async def renew(self) -> list[str]:
        """Extend every lease held; drop and return the ids of those lost to another worker."""
        held = [lease for lease, _ in self._held.values()]
        if not held:
            return []
        since = time.monotonic()
        kept = await self._log.renew(held, ttl=self.ttl)
        lost = []
        for lease in held:
            if self._held.get(lease.saga_id, (None, 0.0))[0] != lease:
                continue  # released or re-taken meanwhile
            if lease.saga_id in kept:
                self._held[lease.saga_id] = (lease, since + self.ttl)
            else:
                self.forget(lease.saga_id)
                lost.append(lease.saga_id)
        return lost

    def held(self, saga_id: str) -> Lease | None:
        entry = self._held.get(saga_id)
        return None if entry is None else entry[0]

    def successor(self, saga_id: str, lease: Lease) -> Lease | None:
        """The lease held now, if it directly succeeds `lease` (this worker re-leased it)."""
        held = self.held(saga_id)
        return held if held is not None and held.fence == lease.fence + 1 else None

    async def current(self, saga_id: str, expected: Lease | None = None) -> Lease:
        """The lease to call and write under; LeaseLost if it is gone, or lapsed and lost.

        With `expected` (the lease the caller's view was built under), also LeaseLost when the
        lease held is neither that one nor its direct successor: the view may be stale."""
        lease, until = self._held.get(saga_id, (None, 0.0))
        if lease is None:
            raise LeaseLost(f"saga {saga_id}: no lease held by {self.owner}")
        if expected is not None and lease is not expected and lease.fence > expected.fence + 1:
            raise LeaseLost(
                f"saga {saga_id}: held by another worker between leases {expected.fence}"
                f" and {lease.fence}"
            )
        if time.monotonic() >= until:  # e.g. this process was paused: renew before acting
            since = time.monotonic()
            if saga_id not in await self._log.renew([lease], ttl=self.ttl):
                self.forget(saga_id, lease)
                raise LeaseLost(f"saga {saga_id}: lease {lease.fence} lapsed and was taken over")
            if self.held(saga_id) == lease:  # a newer lease taken meanwhile stays (as in `renew`)
                self._held[saga_id] = (lease, since + self.ttl)
        return lease

    async def release(self, saga_id: str) -> None:
        entry = self._held.pop(saga_id, None)
        if entry is not None:
            await self._log.release([entry[0]])

    async def release_all(self) -> None:
        """Hand every saga over at once instead of after the ttl (graceful shutdown)."""
        held = [lease for lease, _ in self._held.values()]
        self._held.clear()
        if held:
            try:
                await self._log.release(held)
            except Exception as exc:  # best effort: the leases expire anyway
                logger.warning("could not release %d lease(s): %s", len(held), exc)
