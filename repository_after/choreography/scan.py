"""The tracker's scan: silent sagas timed out, dead letters parking their sagas.

- `time_out_silent`: the sagas idle longer than the shortest step time (`SagaLog.stranded`, no
  lease held) whose pending call's intent (or the operator's retry that redrove its message) is
  older than its step's time (an action's or a
  compensation's / settlement's: the orchestrator's deadlines) get a `timeout` message for that
  turn, written once in the log's outbox (`LogOutbox.enqueue_once`): the call's service decides
  it (`reactor`: compensate, settle or park, unless the call was performed first);
- `park_dead_letters`: a call or time-out message in the dead-letter queue whose saga still waits
  on that very turn (`domain.choreography.ordinal`) parks the saga, `failed_needs_attention`,
  the note naming the message (kept in the queue for `Tracker.retry` to redrive). A dead letter
  of a turn the saga went past (timed out meanwhile), or one no longer in the queue when the
  saga's lease is taken (`Tracker.park`: an operator redrove it since the listing), parks
  nothing. A dead letter that died in the TRACKER's queue parks nothing either: the tracker
  never hands a course back (it retries in place), so only process deaths counted it over the
  delivery limit (a projection held up by a lease, then crashes). It is redriven straight back
  to the tracker's queue alone (the projection is idempotent), at most `TRACKER_REDRIVES` times
  per message in a process's life; past that it stays in the dead-letter queue, logged, for an
  operator.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from repository_after.choreography.course import (
    TRACKER,
    Course,
    Kind,
    UnknownDefinition,
    queue_of,
)
from repository_after.domain.choreography import ordinal
from repository_after.domain.saga import EventKind, SagaEvent, StepRole, next_action, replay
from repository_after.messaging.ports import Broker, DeadLetter

if TYPE_CHECKING:  # the tracker imports this module
    from repository_after.choreography.tracker import Tracker

logger = logging.getLogger(__name__)

#: The note of a saga parked for a dead letter: `Tracker.retry` redrives the message it names.
DEAD_LETTER = "dead-lettered message "
#: How many times one process's scan sends one message back to the tracker's queue: a message
#: that kills the tracker whenever it is projected must not circle for ever.
TRACKER_REDRIVES = 20
#: Who publishes the time-outs (and an operator's retries): the `sagabank-publisher` header.
PUBLISHER = "tracker"


class SagaBusy(Exception):
    """Another tracker or an operator holds the saga's lease right now: try again."""


class Moved(SagaBusy):
    """The saga moved on since the scan looked (its dead letter redriven): the next pass
    decides on what it finds then."""


async def time_out_silent(tracker: Tracker, *, limit: int = 500) -> int:
    """Write a `timeout` for each saga silent past its pending step's time; how many."""
    log = tracker.log
    now = await log.now()
    shortest = min(tracker.action_timeout, tracker.settle_timeout)
    idle_before = (now - timedelta(seconds=shortest)).isoformat(timespec="microseconds")
    written = 0
    for saga_id in await log.stranded(drivable=(), idle_before=idle_before, limit=limit):
        stored = await log.load(saga_id)
        if stored is None or not stored.events:
            continue
        definition = tracker.definition_of(stored)
        if definition is None:
            continue
        call = next_action(definition, replay(definition, stored.events))
        course_events = _course(stored.events)
        if call is None or not course_events:
            continue
        if course_events[-1].kind is not EventKind.OPERATION_STARTED:
            continue
        step_time = (
            tracker.action_timeout if call.role is StepRole.ACTION else tracker.settle_timeout
        )
        since = datetime.fromisoformat(stored.events[-1].at)
        if since > now.astimezone(UTC) - timedelta(seconds=step_time):
            continue
        course = Course.of(saga_id, definition, stored.params, course_events, Kind.TIMEOUT)
        message = course.message(service=call.step.service, publisher=PUBLISHER)
        if await tracker.outbox.enqueue_once(message):
            logger.warning(
                "saga %s: %s silent for %.0fs: timed out", saga_id, call.operation, step_time
            )
            written += 1
    return written


async def park_dead_letters(tracker: Tracker) -> int:
    """Park each saga still waiting on a dead-lettered message of its; how many."""
    if tracker.broker is None:
        return 0
    parked = 0
    dead = await tracker.broker.dead_letter_records(tracker.topology)
    tracker.dead_letters_seen = len(dead)
    own = queue_of(tracker.topology, TRACKER)
    for letter in dead:
        message = letter.message
        if letter.queue == own:
            await _back_to_tracker(tracker, tracker.broker, letter)
            continue
        if not message.routing_key.startswith(("call.", "timeout.")):
            continue
        try:
            course = Course.from_payload(message.payload)
            definition = course.resolve(tracker.lookup)
        except (ValueError, KeyError, TypeError, UnknownDefinition):
            continue
        stored = await tracker.log.load(course.saga_id)
        if stored is None:
            continue
        state = replay(definition, stored.events)
        if state.at_rest or ordinal(stored.events) != ordinal(course.history):
            continue  # the saga went on without it (timed out, or done)
        note = f"{DEAD_LETTER}{message.message_id} ({message.routing_key})"
        with contextlib.suppress(SagaBusy):
            await tracker.park(stored.saga_id, message.message_id, note)
            logger.error("saga %s parked: %s", course.saga_id, note)
            parked += 1
    return parked


async def _back_to_tracker(tracker: Tracker, broker: Broker, letter: DeadLetter) -> None:
    """Send the tracker's own dead copy back to its queue (never parks: the saga's services have
    their own copies, and the projection is idempotent); bounded per message and process."""
    message_id = letter.message.message_id
    if letter.reason != "delivery_limit":
        return  # refused by the tracker itself: not a course; an operator's to look at
    if tracker.redriven[message_id] >= TRACKER_REDRIVES:
        if tracker.redriven[message_id] == TRACKER_REDRIVES:
            tracker.redriven[message_id] += 1
            logger.error(
                "tracker: message %s dead-lettered from the tracker's queue again after %d "
                "redrives: left in the dead-letter queue",
                message_id,
                TRACKER_REDRIVES,
            )
        return
    queue = queue_of(tracker.topology, TRACKER)
    if await broker.redrive(tracker.topology, message_id, queue=queue):
        tracker.redriven[message_id] += 1
        logger.warning(
            "tracker: its copy of message %s went over the delivery limit (process deaths "
            "while it waited); sent back to %s (%d)",
            message_id,
            queue,
            tracker.redriven[message_id],
        )


#: The log's own events, which no message carries: a saga parked for a dead letter and resumed
#: by redrive ends with them, after the intent its redriven message waits on.
_TRACKER_ONLY = frozenset({EventKind.PARKED, EventKind.OPERATOR_RETRY})


def _course(events: Sequence[SagaEvent]) -> Sequence[SagaEvent]:
    """`events` without the tracker's trailing events: the history the pending call's message
    carries, which a `timeout` must carry too (the service folds it to the same turn)."""
    end = len(events)
    while end and events[end - 1].kind in _TRACKER_ONLY:
        end -= 1
    return events[:end]
