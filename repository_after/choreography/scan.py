"""The tracker's scan: silent sagas timed out (the dead letters: `choreography.dead_letters`).

- `time_out_silent`: the sagas idle longer than the shortest step time (`SagaLog.stranded`, no
  lease held) whose pending call's intent (or the operator's retry that redrove its message) is
  older than its step's time (an action's or a
  compensation's / settlement's: the orchestrator's deadlines) get a `timeout` message for that
  turn, written once in the log's outbox (`LogOutbox.enqueue_once`): the call's service decides
  it (`reactor`: compensate, settle or park, unless the call was performed first);
- what a retry or a park meets when another writer holds the saga (`SagaBusy`, `Moved`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from repository_after.choreography.course import (
    Course,
    Kind,
)
from repository_after.domain.saga import EventKind, SagaEvent, StepRole, next_action, replay

if TYPE_CHECKING:  # the tracker imports this module
    from repository_after.choreography.tracker import Tracker

logger = logging.getLogger(__name__)

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
