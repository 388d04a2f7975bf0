"""The outbox relay: publishes what the participant's transactions wrote to its outbox.

One pass (`publish_due`): claim due rows (`outbox.claim`: PostgreSQL `FOR UPDATE SKIP LOCKED`,
any number of relays; SQLite: the one holder of the relay lease), publish them concurrently,
each persistent with its stable `message_id` and awaited until the broker's confirm, then mark
the confirmed ones published in one transaction. A publication that fails is recorded on its row
(`attempts`, `last_error`) and retried after a backoff that doubles up to `max_backoff`:
forever, never dropped, and counted in `RelayPass` and `outbox.backlog` for the operator. The
first pass confirmed without a failure after failures (or after start) makes every row still
backing off due (`outbox.due_now`): after a broker outage the outbox drains oldest first.

Crash windows:
- killed after the claim, before publishing: the rows' claim expires (`claim_ttl`) and a relay
  claims them again;
- killed after the broker's confirm, before `mark_published`: the same; the message is
  published twice, with one `message_id`, and the consumer's inbox applies it once.
So a claim is a lease, not a lock held across the network: a relay stalled past `claim_ttl`
may publish a row another relay publishes too: a duplicate, absorbed the same way.

Waking (`run`): whoever commits an outbox row in this process calls `notify()` AFTER the commit
(the inbox, the saga log's outbox; `choreography.runtime` maps each store to its relay), so the
row is published at once instead of at the next poll (a choreographed saga's every hop waited
for it: 0.2 s each). The wake-up is one flag, cleared BEFORE each pass reads: a commit that
lands during a pass sets it again and the next pass runs at once (never lost), and any number of
commits during a pass ring once (one pass, one batch: batching is kept). A failed row's retry
wakes the relay too: the wait ends when the soonest backoff this relay set comes due. The poll
remains, as the fallback for rows nobody here announces (another process or replica writing the
same store, an operator's command, failures recorded before a restart): 1 s, not the 0.2 s it
was when it carried every message (docs/choreography.md: an idle relay's read costs ~44 us of
CPU; three relays at 0.2 s cost 6.5 ms a second, at 1 s 0.8 ms).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from repository_after.messaging import outbox
from repository_after.messaging.envelope import utc_now_text
from repository_after.messaging.outbox import Claimed
from repository_after.messaging.ports import Broker
from repository_after.participant_kit.storage import ParticipantStore, Tx

logger = logging.getLogger(__name__)

AfterPublish = Callable[[list[Claimed]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RelayPass:
    claimed: int
    published: int
    failed: int


@dataclass(frozen=True, slots=True)
class RelayTiming:
    claim_ttl: float = 30.0
    batch: int = 64
    initial_backoff: float = 0.1
    max_backoff: float = 30.0
    #: how long an idle relay waits, unless woken (`notify`, a retry due), before looking again
    poll_interval: float = 1.0

    def backoff(self, attempts: int) -> float:
        """The wait before the next try of a row that failed `attempts` times (>= 1)."""
        return min(self.max_backoff, self.initial_backoff * 2.0 ** min(attempts - 1, 30))


class Wakeup:
    """A relay's doorbell: `notify()` after committing an outbox row (in the relay's event loop).

    One flag, not a count: rings while a pass runs coalesce into one next pass."""

    __slots__ = ("_rung",)

    def __init__(self) -> None:
        self._rung = asyncio.Event()

    def notify(self) -> None:
        self._rung.set()

    def is_set(self) -> bool:
        return self._rung.is_set()

    def clear(self) -> None:
        self._rung.clear()

    async def wait(self) -> None:
        await self._rung.wait()


class OutboxRelay:
    """Publishes one store's outbox. `notify` wakes `run` (module docstring); `after_publish` is
    a seam for crash tests: it runs between the broker's confirms and `mark_published`."""

    def __init__(
        self,
        store: ParticipantStore,
        broker: Broker,
        *,
        owner: str,
        timing: RelayTiming | None = None,
        clock: Callable[[], float] = time.time,
        after_publish: AfterPublish | None = None,
    ) -> None:
        self.wakeup = Wakeup()
        self.store = store
        self.broker = broker
        self.owner = owner
        self.timing = timing or RelayTiming()
        self.clock = clock
        self.after_publish = after_publish
        self.published = 0  # publications confirmed, since start
        self.failures = 0  # publications not confirmed, since start
        # Rows may be backing off (this relay's failures, or an earlier process's): the first
        # pass that publishes without a failure makes them due (`outbox.due_now`).
        self._backing_off = True
        self.batches = 0  # passes that claimed rows, since start (published / batches: batching)
        self._retry_at: float | None = None  # the soonest backoff of a row this relay failed

    def notify(self) -> None:
        """A row was committed to this relay's store: publish it now, not at the next poll."""
        self.wakeup.notify()

    async def publish_due(self) -> RelayPass:
        now, timing = self.clock(), self.timing
        if self._retry_at is not None and self._retry_at <= now:
            self._retry_at = None  # due: this pass's read sees its rows (a new failure sets it)
        if not await self.store.read(lambda tx: outbox.any_due(tx, now=now)):
            return RelayPass(0, 0, 0)  # idle: no write (a row committed meanwhile: its notify)
        claimed = await self.store.transaction(
            lambda tx: outbox.claim(
                tx, owner=self.owner, now=now, ttl=timing.claim_ttl, limit=timing.batch
            )
        )
        if not claimed:
            return RelayPass(0, 0, 0)
        self.batches += 1
        outcomes = await asyncio.gather(
            *(self.broker.publish(row.exchange, row.message) for row in claimed),
            return_exceptions=True,
        )
        confirmed = [row for row, out in zip(claimed, outcomes, strict=True) if out is None]
        failed = [
            (row, out)
            for row, out in zip(claimed, outcomes, strict=True)
            if isinstance(out, BaseException)
        ]
        if self.after_publish is not None:
            await self.after_publish(confirmed)
        retry_base = self.clock()

        recovered = self._backing_off and bool(confirmed) and not failed

        def settle(tx: Tx) -> int:
            outbox.mark_published(tx, [row.id for row in confirmed], now_text=utc_now_text())
            made_due = 0
            if recovered:  # the broker confirms again: what waits for it goes, oldest first
                made_due = outbox.due_now(tx, now=retry_base)
            for row, exc in failed:
                wait = timing.backoff(row.attempts + 1)
                outbox.mark_failed(tx, row.id, error=_describe(exc), retry_at=retry_base + wait)
            return made_due

        made_due = await self.store.transaction(settle)
        if failed:
            soonest = retry_base + min(timing.backoff(row.attempts + 1) for row, _ in failed)
            self._retry_at = soonest if self._retry_at is None else min(self._retry_at, soonest)
        # An outage is a pass where nothing was confirmed. A row failing beside confirmed ones is
        # that row's problem (unroutable, say): it keeps its backoff, and no later pass makes it
        # due early, or it would be retried every other pass instead of backing off.
        self._backing_off = (bool(failed) and not confirmed) or (
            self._backing_off and not recovered and not failed
        )
        if made_due:
            self._retry_at = None
            self.wakeup.notify()  # the rows made due go now, not at the next poll
        if failed:  # one line a pass, not one a row: an outage fails thousands of rows a minute
            first, exc = failed[0]
            logger.warning(
                "outbox: %d message(s) not published (first %s, attempt %d): %s",
                len(failed),
                first.message.message_id,
                first.attempts + 1,
                _describe(exc),
            )
        self.published += len(confirmed)
        self.failures += len(failed)
        return RelayPass(len(claimed), len(confirmed), len(failed))

    async def run(self, stop: asyncio.Event) -> None:
        """Publish until `stop` is set; a full batch is followed at once by the next, a pass
        that did not fill one by a wait for `stop`, a `notify` or `poll_interval`."""
        while not stop.is_set():
            self.wakeup.clear()  # before the read: a commit from here on rings again
            try:
                done = await self.publish_due()
            except Exception:  # a storage failure: keep going, the rows stay in the outbox
                logger.exception("outbox relay %s: pass failed", self.owner)
                done = RelayPass(0, 0, 0)
            if done.claimed < self.timing.batch:
                await self._idle(stop)

    async def _idle(self, stop: asyncio.Event) -> None:
        """Until `stop`, a wake-up (at once if one came during the pass), a failed row's retry
        coming due, or `poll_interval`."""
        if self.wakeup.is_set():
            return
        timeout = self.timing.poll_interval
        if self._retry_at is not None:
            timeout = max(0.0, min(timeout, self._retry_at - self.clock()))
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wakeup.wait())]
        try:
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]
