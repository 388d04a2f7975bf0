"""The tracker's dead letters: each one parks its saga, goes back to the tracker, is discarded as
stale, or is left for an operator. Called by the tracker's scan (`sweep`) and its projection
(`parked_for`, `resumed_event`).

Each pass lists the dead-letter queue (`Broker.dead_letter_records`: the message, the queue it
died in, why) and judges every letter against the saga log:
- **current**: a call or time-out message (from a service's queue) of the turn its saga still
  waits on (`domain.choreography.ordinal` equal, the saga not at rest) parks the saga,
  `failed_needs_attention`, the note naming the message, which stays for `Tracker.retry` to
  redrive. The park checks under the saga's lease that the letter is still dead (`park`: an
  operator's retry may have redriven it since the listing);
- **the tracker's own copy** (died in the tracker's queue, over the delivery limit: only process
  deaths count a tracker copy over it, as the tracker retries in place) whose history adds events
  to the log is sent back to the tracker's queue alone, at most `TRACKER_REDRIVES` times per
  message in a process's life (one that kills the tracker each time must not circle for ever);
- **stale**: a copy of a turn its saga went past (the log holds a later intent: the turn was
  decided by another path, a time-out or another copy), of a saga that is terminal, or a
  tracker copy that adds nothing to the log, is acknowledged away (`Broker.discard`) and
  reported: a warning naming the message, its saga, where it died and why it is stale, and
  `discarded` (`/metrics`: `sagabank_dead_letters_discarded_total`). Never silently: the
  dead-letter count an operator watches then means letters needing a decision. Safe without the
  saga's lease because staleness only grows: a log only grows (the ordinal with it) and a
  terminal saga stays terminal. A parked saga is not terminal (an operator may retry it), so its
  letters stay;
- **left**: anything else, for an operator: a letter the tracker refused itself (not a course,
  reason `rejected`), one it cannot read, one of a saga it does not know, one ahead of the log
  (the log has not caught up yet: the next pass decides).

Why the log line and a counter, not an event in the saga's history: a terminal saga's log is
closed (the state machine refuses any event after the end, in both modes), and the letter
changes nothing in the saga. A discard followed by a crash before the log line loses the line,
never a letter that mattered.
"""

from __future__ import annotations

import contextlib
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from repository_after.choreography.course import (
    TRACKER,
    Course,
    UnknownDefinition,
    queue_of,
    unknown_events,
)
from repository_after.choreography.scan import PUBLISHER, SagaBusy
from repository_after.domain.choreography import ordinal
from repository_after.domain.saga import TERMINAL, EventKind, SagaEvent, replay
from repository_after.messaging.ports import Broker, DeadLetter
from repository_after.service_layer.clock import utc_now
from repository_after.service_layer.saga_ports import StoredSaga

if TYPE_CHECKING:  # the tracker imports this module
    from repository_after.choreography.tracker import Tracker

logger = logging.getLogger(__name__)

#: The note of a saga parked for a dead letter: `Tracker.retry` redrives the message it names.
DEAD_LETTER = "dead-lettered message "
#: How many times one process's scan sends one message back to the tracker's queue.
TRACKER_REDRIVES = 20


@dataclass
class DeadLetterBook:
    """What this process's scans did with the dead letters (`/metrics`)."""

    #: letters left in the dead-letter queue after the last pass (None before the first)
    seen: int | None = None
    #: message id -> times the tracker's own dead copy was sent back to its queue
    redriven: Counter[str] = field(default_factory=Counter)
    #: stale letters acknowledged away since the process started
    discarded: int = 0

    def redrives(self) -> int:
        return sum(min(n, TRACKER_REDRIVES) for n in self.redriven.values())

    def gone(self) -> None:
        """One letter of the last listing left the queue (discarded, or sent back)."""
        self.seen = None if self.seen is None else self.seen - 1


async def sweep(tracker: Tracker) -> int:
    """One pass over the dead-letter queue (the module's rules); how many sagas it parked."""
    broker = tracker.broker
    if broker is None:
        return 0
    dead = await broker.dead_letter_records(tracker.topology)
    tracker.dead_letters.seen = len(dead)  # less each one discarded or sent back below
    own = queue_of(tracker.topology, TRACKER)
    parked = 0
    for letter in dead:
        if letter.queue == own and letter.reason != "delivery_limit":
            continue  # refused by the tracker itself: not a course; an operator's to look at
        found = await _saga_of(tracker, letter)
        if letter.queue == own:
            if found is not None and not unknown_events(found[1].events, found[0].history):
                stale = "the log holds all its events"
                await _discard(tracker, broker, letter, found[0].saga_id, stale)
            else:
                await _back_to_tracker(tracker, broker, letter)
            continue
        if found is None or not letter.message.routing_key.startswith(("call.", "timeout.")):
            continue
        course, stored = found
        state = replay(course.resolve(tracker.lookup), stored.events)
        turn, reached = ordinal(course.history), ordinal(stored.events)
        if state.status in TERMINAL or reached > turn:
            stale = f"the saga is {state.status} at turn {reached}, the letter's turn is {turn}"
            await _discard(tracker, broker, letter, course.saga_id, stale)
            continue
        if state.at_rest or reached != turn:
            continue  # parked (an operator's), or the log behind the message
        message = letter.message
        note = f"{DEAD_LETTER}{message.message_id} ({message.routing_key})"
        with contextlib.suppress(SagaBusy):
            await park(tracker, stored.saga_id, message.message_id, note)
            logger.error("saga %s parked: %s", course.saga_id, note)
            parked += 1
    return parked


async def park(tracker: Tracker, saga_id: str, message_id: str, note: str) -> None:
    """Park a saga for its dead-lettered message `message_id`; `Moved` if, under the saga's
    lease, that message is no longer a dead letter (an operator's retry redrove it after the
    scan listed it: parking it again would strand a saga that is going on)."""
    own = queue_of(tracker.topology, TRACKER)  # the tracker's own copy parks nothing

    async def still_dead() -> bool:
        dead = await (await tracker.bound_broker()).dead_letter_records(tracker.topology)
        return any(d.message.message_id == message_id and d.queue != own for d in dead)

    await tracker.record(saga_id, EventKind.PARKED, note, still=still_dead)


async def redrive(tracker: Tracker, saga_id: str, message_id: str) -> None:
    """An operator's retry of a saga parked for `message_id`: send it back where it died
    (`Tracker.retry`, under the saga's lease)."""
    if not await (await tracker.bound_broker()).redrive(tracker.topology, message_id):
        logger.error("saga %s: message %s is no longer a dead letter", saga_id, message_id)


async def _saga_of(tracker: Tracker, letter: DeadLetter) -> tuple[Course, StoredSaga] | None:
    """The letter's course and its saga as the log holds it; None if either is unknown."""
    try:
        course = Course.from_payload(letter.message.payload)
        course.resolve(tracker.lookup)
    except (ValueError, KeyError, TypeError, UnknownDefinition):
        return None
    stored = await tracker.log.load(course.saga_id)
    return None if stored is None else (course, stored)


async def _discard(
    tracker: Tracker, broker: Broker, letter: DeadLetter, saga_id: str, stale: str
) -> None:
    """Acknowledge a stale letter away and report it (nothing if it is gone meanwhile: taken by
    another tracker's scan)."""
    message = letter.message
    if not await broker.discard(tracker.topology, message.message_id, queue=letter.queue):
        return
    tracker.dead_letters.discarded += 1
    tracker.dead_letters.gone()
    logger.warning(
        "saga %s: stale dead letter %s (%s, died in %s: %s) discarded: %s",
        saga_id,
        message.message_id,
        message.routing_key,
        letter.queue or "?",
        letter.reason or "?",
        stale,
    )


async def _back_to_tracker(tracker: Tracker, broker: Broker, letter: DeadLetter) -> None:
    """Send the tracker's own dead copy back to its queue (never parks: the saga's services have
    their own copies, and the projection is idempotent); bounded per message and process."""
    message_id = letter.message.message_id
    redriven = tracker.dead_letters.redriven
    if redriven[message_id] >= TRACKER_REDRIVES:
        if redriven[message_id] == TRACKER_REDRIVES:
            redriven[message_id] += 1
            logger.error(
                "tracker: message %s dead-lettered from the tracker's queue again after %d "
                "redrives: left in the dead-letter queue",
                message_id,
                TRACKER_REDRIVES,
            )
        return
    queue = queue_of(tracker.topology, TRACKER)
    if await broker.redrive(tracker.topology, message_id, queue=queue):
        redriven[message_id] += 1
        tracker.dead_letters.gone()
        logger.warning(
            "tracker: its copy of message %s went over the delivery limit (process deaths "
            "while it waited); sent back to %s (%d)",
            message_id,
            queue,
            redriven[message_id],
        )


def parked_for(events: Sequence[SagaEvent]) -> str | None:
    """The message id a saga's last `parked` event names, if it was parked for a dead letter
    and nothing happened since."""
    last = events[-1] if events else None
    if last is None or last.kind is not EventKind.PARKED or not last.note:
        return None
    if not last.note.startswith(DEAD_LETTER):
        return None
    return last.note.removeprefix(DEAD_LETTER).split(" ", 1)[0]


def resumed_event(
    stored: Sequence[SagaEvent], course: Course, new: Sequence[SagaEvent]
) -> SagaEvent | None:
    """The event that takes a saga parked for a dead letter out of its park when a message
    shows its course went on without that letter (another copy of it was applied; the parked
    state would refuse the later history, and the saga would stay parked, then `debiting` after
    a retry, for ever). Written by the tracker as a retry, its note naming the message: the
    saga resumes exactly where it stopped, and the new events follow."""
    dead = parked_for(stored)
    if dead is None:
        return None
    note = (
        f"resumed by the tracker: a {course.kind.value} message carries the course past "
        f"dead-lettered message {dead} ({len(new)} new events)"
    )
    return SagaEvent(EventKind.OPERATOR_RETRY, at=utc_now(), note=note, publisher=PUBLISHER)
