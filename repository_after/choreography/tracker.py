"""The tracker: a saga log kept without a coordinator, so every read of it keeps working.

It consumes every course message (its own queue, bound to every `call.#` and `ended.#`) and
projects it into the saga log (`SagaLog`, the orchestrator's tables): the events of the message's
history the log does not hold yet are appended, with the folded status (`domain.saga`), and the
observers (metrics, live events, the transition log) see each as the orchestrator's would. So
`GET /transfers/{id}`, `/sagas`, the dashboard, the metrics, parking and `sagabank audit` read a
choreographed saga as an orchestrated one. A history only grows by its own suffix (one course at
a time: `domain.choreography`), so a message older than the log adds nothing, and one that
arrives out of order adds what it has; the log's own events (parked, operator's) stay where the
tracker wrote them. A message that adds nothing is acknowledged after a read, without the saga's
lease (which the scan and an operator would otherwise find taken for a write that never comes).

`scan` (every `tracker_interval` seconds):
- a saga whose pending call has been silent longer than its step's time (an action: the
  orchestrator's `retry_deadline`; a compensation or settlement: `settle_deadline`) gets a
  `timeout` message to that call's service, written once in the log's outbox: the service folds
  `retries_exhausted` (compensate, settle or park, as the orchestrator would) unless the call was
  performed first (`reactor`; the rules in `choreography.scan`);
- each dead letter parks its saga (one of the turn the saga waits on), goes back to the tracker
  (its own copy that adds events), is discarded and reported as stale (a turn the saga went
  past), or is left for an operator (`choreography.dead_letters`).
A saga parked for a dead letter whose later history arrives anyway is taken out of its park by
the tracker before the new events (`dead_letters.resumed_event`).
`retry` (`sagabank sagas retry`, `POST .../retry`) resumes a parked saga: a dead-lettered message
is redriven (`Broker.redrive`, the saga's lease held until it is done, and a park checks under
that lease that its message is still a dead letter: a resumed saga is never parked again for a
message already redriven); otherwise the next call's message is written to the outbox with the
operator's event. Every write takes the saga's lease first (`SagaLog.acquire`): the tracker, a
second tracker and an operator never interleave their writes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

from repository_after.choreography import dead_letters, scan
from repository_after.choreography.course import (
    Course,
    Kind,
    Lookup,
    UnknownDefinition,
    unknown_events,
)
from repository_after.choreography.dead_letters import DeadLetterBook, parked_for, resumed_event
from repository_after.choreography.log_outbox import LogOutbox
from repository_after.choreography.scan import PUBLISHER, Moved, SagaBusy
from repository_after.domain.choreography import intent_event
from repository_after.domain.saga import (
    EventKind,
    InvalidTransition,
    SagaDefinition,
    SagaEvent,
    SagaState,
    next_action,
    replay,
)
from repository_after.messaging.ports import Broker, BrokerError, Delivery, Topology
from repository_after.service_layer.clock import utc_now
from repository_after.service_layer.saga_driver import SagaNotFound
from repository_after.service_layer.saga_ports import Lease, StoredSaga
from repository_after.service_layer.transitions import Observer, apply_observed

logger = logging.getLogger(__name__)


class Tracker:
    def __init__(
        self,
        *,
        outbox: LogOutbox,
        broker: Broker | None,
        topology: Topology,
        connect: Callable[[], Awaitable[Broker]] | None = None,
        lookup: Lookup,
        observers: Sequence[Observer] = (),
        action_timeout: float,
        settle_timeout: float,
        owner: str = "tracker",
        lease_ttl: float = 10.0,
    ) -> None:
        self.outbox = outbox
        self.log = outbox.log
        self.broker = broker
        self.connect = connect
        self._own_broker = False
        #: set when the runtime stops: a delivery being retried is left unsettled (it returns)
        self.stopping = False
        #: deliveries whose projection failed and is being retried now
        self.waiting = 0
        #: what the scans did with the dead letters (`/metrics`)
        self.dead_letters = DeadLetterBook()
        self.topology = topology
        self.lookup = lookup
        self.observers = list(observers)
        self.action_timeout = action_timeout
        self.settle_timeout = settle_timeout
        self.owner = owner
        self.lease_ttl = lease_ttl

    # -- the projection -------------------------------------------------------------------

    async def on_delivery(self, delivery: Delivery) -> None:
        """The tracker queue's consumer: ack after the log write. A failure (the log's database
        away, an operator holding the saga) is retried here, not handed back: the projection is
        idempotent, and a handed-back copy would count towards the delivery limit and end among
        the dead letters. A message that is not a course is dead-lettered at once."""
        failures = 0
        while not self.stopping:
            try:
                await self.project(Course.from_payload(delivery.message.payload))
            except (ValueError, KeyError, TypeError, UnknownDefinition) as exc:
                logger.error("tracker: message %s parked: %s", delivery.message.message_id, exc)
                await delivery.nack(requeue=False)
                return
            except Exception as exc:
                if not failures:
                    self.waiting += 1
                failures += 1
                logger.warning(
                    "tracker: message %s not projected yet (%s: %s)",
                    delivery.message.message_id,
                    type(exc).__name__,
                    exc,
                )
                await asyncio.sleep(min(2.0, 0.02 * 2 ** min(failures, 7)))
                continue
            await delivery.ack()
            if failures:
                self.waiting -= 1
            return

    async def project(self, course: Course) -> SagaState:
        definition = course.resolve(self.lookup)
        stored = await self.log.load(course.saga_id)
        if stored is None:
            state = replay(definition, course.history)
            created = await self.log.create(
                saga_id=course.saga_id,
                definition=definition.name,
                definition_version=definition.version,
                definition_hash=definition.shape_hash(),
                params=dict(course.params),
                events=course.history,
                status=state.status,
            )
            if created is not None:
                return state
        elif not unknown_events(stored.events, course.history):
            # Nothing to add (a copy, or a message older than the log): no lease taken, so an
            # operator's action or the scan is never turned away by a projection writing nothing.
            return replay(definition, stored.events)
        async with self._leased(course.saga_id) as (held, stored):
            new = unknown_events(stored.events, course.history)
            state = replay(definition, stored.events)
            if not new:
                return state
            resumed = resumed_event(stored.events, course, new)
            if resumed is not None:
                logger.warning("tracker: saga %s: %s", course.saga_id, resumed.note)
                new = [resumed, *new]
            try:
                state = apply_observed(self.observers, course.saga_id, definition, state, new)
            except InvalidTransition as exc:  # two courses: a bug; keep the log as it is
                logger.error("tracker: saga %s: %s; message ignored", course.saga_id, exc)
                return replay(definition, stored.events)
            await self.outbox.append(
                course.saga_id, new, status=state.status, lease=held.lease, message=None
            )
            held.released = True
            return state

    async def scan(self) -> tuple[int, int]:
        """One pass (`scan`): (time-outs written, sagas parked for a dead letter)."""
        return await scan.time_out_silent(self), await dead_letters.sweep(self)

    async def run(self, stop: asyncio.Event, *, interval: float) -> None:
        while not stop.is_set():
            try:
                await self.scan()
            except BrokerError as exc:  # an outage: one line a scan, no traceback
                logger.warning("tracker: scan failed, the broker is unavailable: %s", exc)
            except Exception:
                logger.exception("tracker: scan failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    # -- operator actions ----------------------------------------------------------------

    async def retry(self, saga_id: str, *, note: str | None = None) -> SagaState:
        """Resume a parked saga: redrive its dead letter, or send its next call again."""
        state, _ = await self.record(
            saga_id, EventKind.OPERATOR_RETRY, note, send=True, redrive=True
        )
        return state

    async def resolve(self, saga_id: str, *, note: str | None = None) -> SagaState:
        state, _ = await self.record(saga_id, EventKind.OPERATOR_RESOLVE, note)
        return state

    async def record(
        self,
        saga_id: str,
        kind: EventKind,
        note: str | None,
        *,
        send: bool = False,
        redrive: bool = False,
        still: Callable[[], Awaitable[bool]] | None = None,
    ) -> tuple[SagaState, str | None]:
        """Append an operator's (or the tracker's `parked`) event; with `send`, also the next
        call's intent and message, unless the saga was parked for a dead letter (returned:
        the message id, redriven with `redrive` before the saga's lease is released,
        so no scan parks the saga between the event and the redrive). `still`: checked under
        the lease first; False raises `Moved`, nothing written."""
        if await self.log.summary(saga_id) is None:
            raise SagaNotFound(saga_id)
        async with self._leased(saga_id) as (held, stored):
            if still is not None and not await still():
                raise Moved(saga_id)
            definition = self.definition_of(stored)
            if definition is None:
                raise InvalidTransition(f"saga {saga_id}: its definition is not run here")
            state = replay(definition, stored.events)
            events = [SagaEvent(kind, at=utc_now(), note=note)]
            state = apply_observed(self.observers, saga_id, definition, state, events)
            dead = parked_for(stored.events) if send else None
            message = None
            if send and dead is None and (call := next_action(definition, state)) is not None:
                intent = intent_event(call, at=utc_now())._replace(publisher=PUBLISHER)
                state = apply_observed(self.observers, saga_id, definition, state, [intent])
                events.append(intent)
                course = Course.of(
                    saga_id, definition, stored.params, (*stored.events, *events), Kind.CALL
                )
                message = course.message(service=call.step.service, publisher=PUBLISHER)
            keep = dead is not None and redrive
            await self.outbox.append(
                saga_id,
                events,
                status=state.status,
                lease=held.lease,
                message=message,
                release=not keep,
            )
            held.released = not keep
            if dead is not None and redrive:
                await dead_letters.redrive(self, saga_id, dead)
            return state, dead

    # -- plumbing ------------------------------------------------------------------------

    async def bound_broker(self) -> Broker:
        """The bound broker, or one connected now (an operator's command outside `serve`)."""
        if self.broker is None:
            if self.connect is None:
                raise RuntimeError("the tracker has no broker to redrive with")
            self.broker = await self.connect()
            self._own_broker = True
        return self.broker

    async def close(self) -> None:
        """Close the broker this tracker connected itself (never the runtime's)."""
        if self._own_broker and self.broker is not None:
            await self.broker.close()
            self.broker, self._own_broker = None, False

    def definition_of(self, stored: StoredSaga) -> SagaDefinition | None:
        try:
            definition = self.lookup(stored.definition, stored.definition_version)
        except KeyError:
            return None
        return definition if definition.shape_hash() == stored.definition_hash else None

    @contextlib.asynccontextmanager
    async def _leased(self, saga_id: str) -> AsyncIterator[tuple[_Held, StoredSaga]]:
        """The saga's lease, and the saga read under it; released on the way out unless the
        write under it released it (`_Held.released`)."""
        lease = await self.log.acquire(saga_id, self.owner, ttl=self.lease_ttl)
        if lease is None:
            raise SagaBusy(saga_id)
        held = _Held(lease)
        try:
            stored = await self.log.load(saga_id)
            assert stored is not None
            yield held, stored
        finally:
            if not held.released:
                await self.log.release([lease])


@dataclass
class _Held:
    lease: Lease
    released: bool = False
