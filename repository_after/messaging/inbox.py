"""Exactly-once effects over at-least-once delivery: the inbox, and the consumer that acks.

`Inbox.handle(message)` runs ONE local transaction of the participant's store that
1. locks the message's id (`Tx.lock`: duplicates delivered at once to two consumers serialise),
2. looks the id up in the consumer's inbox: found, it answers the recorded result and does
   nothing else (a duplicate: a redelivery, a relay's second publication, a redrive);
3. refuses a message older than what retention purged from this inbox (`StaleMessage`): its
   record might be gone, so applying it could apply it twice; it is parked instead;
4. runs the handler, which makes the business change and writes the messages it sends
   (`outbox.enqueue`) through the same `tx`,
5. records (consumer, message_id) -> result.
All of it commits together or not at all. PostgreSQL's `PRIMARY KEY (consumer, message_id)` is
the backstop: a race the lock missed fails the insert, and the store runs the call once more,
which then finds the winner's row. Once it has committed (not for a duplicate, which wrote
nothing), `notify` tells the store's outbox relay, so what the handler sent is published now
rather than at the relay's next poll (`relay`).

`InboxConsumer` is the `on_delivery` a broker calls: it acks a delivery only AFTER `handle`
committed. A crash between the commit and the ack redelivers the message, and step 2 absorbs
it. A handler that raises commits nothing and is nacked with requeue (after a growing delay):
the broker redelivers it, counting towards the queue's delivery limit, over which the message
is dead-lettered (kept for `redrive`). A stale message is nacked without requeue:
dead-lettered at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import orjson

from repository_after.messaging.envelope import Message, utc_now_text
from repository_after.messaging.ports import Delivery
from repository_after.participant_kit.storage import ParticipantStore, Tx

logger = logging.getLogger(__name__)

Result = dict[str, Any]
Handler = Callable[[Tx, Message], Result]
#: Called after a commit that may have written outbox rows (`OutboxRelay.notify`).
Notify = Callable[[], None]

#: How far the senders' clocks may be behind the consumer's: a message created up to this long
#: after the purge's cutoff may still have had its record purged (`retention`).
CLOCK_MARGIN = timedelta(days=1)


class StaleMessage(Exception):
    """The message is older than what this inbox purged: it may have been applied already."""


@dataclass(frozen=True, slots=True)
class Handled:
    result: Result
    #: True when the message had been applied before: nothing was done this time
    duplicate: bool


class Inbox:
    """One consumer's inbox in `store`: `handle` applies each message id at most once;
    `notify` (the store's relay's) is called after each commit of a message applied."""

    def __init__(
        self,
        store: ParticipantStore,
        *,
        consumer: str,
        handler: Handler,
        notify: Notify | None = None,
    ) -> None:
        self.store = store
        self.consumer = consumer
        self.handler = handler
        self.notify = notify

    async def handle(self, message: Message) -> Handled:
        handled = await self.store.transaction(lambda tx: self._apply(tx, message))
        if not handled.duplicate and self.notify is not None:
            self.notify()  # after the commit: the relay's read sees the rows
        return handled

    def _apply(self, tx: Tx, message: Message) -> Handled:
        tx.lock(f"inbox\x1f{self.consumer}\x1f{message.message_id}")
        rows = tx.execute(
            "SELECT result FROM inbox WHERE consumer = ? AND message_id = ?",
            (self.consumer, message.message_id),
        )
        if rows:
            return Handled(orjson.loads(rows[0][0]), duplicate=True)
        _refuse_if_stale(tx, self.consumer, message)
        result = self.handler(tx, message)
        tx.execute(
            "INSERT INTO inbox (consumer, message_id, result, received_at) VALUES (?, ?, ?, ?)",
            (self.consumer, message.message_id, orjson.dumps(result).decode(), utc_now_text()),
        )
        return Handled(result, duplicate=False)

    async def applied(self) -> int:
        """How many messages this consumer's inbox holds."""
        rows = await self.store.read(
            lambda tx: tx.execute("SELECT COUNT(*) FROM inbox WHERE consumer = ?", (self.consumer,))
        )
        return int(rows[0][0])


def _refuse_if_stale(tx: Tx, consumer: str, message: Message) -> None:
    rows = tx.execute("SELECT purged_before FROM inbox_retention WHERE consumer = ?", (consumer,))
    if not rows:
        return
    fence = datetime.fromisoformat(rows[0][0]) + CLOCK_MARGIN
    if datetime.fromisoformat(message.created_at) < fence:
        raise StaleMessage(
            f"message {message.message_id} was created at {message.created_at}, before this "
            f"inbox's purge horizon ({rows[0][0]} + {CLOCK_MARGIN}): it may have applied already"
        )


AfterCommit = Callable[[Message, Handled], Awaitable[None]]
#: The longest wait before a failed delivery is handed back.
MAX_REQUEUE_DELAY = 30.0


class InboxConsumer:
    """A broker's `on_delivery` over an `Inbox`: ack after commit, nack with requeue on failure.

    A failed delivery is handed back after `requeue_delay` seconds, doubled at each delivery
    of the message (capped at `MAX_REQUEUE_DELAY`): the delivery limit then spans a while (with
    a limit of 5 and 0.5 s, about 30 s) instead of a few milliseconds, so a short outage of the
    store does not park good messages. `after_commit` is a seam for crash tests: it runs between
    the commit and the ack."""

    def __init__(
        self,
        inbox: Inbox,
        *,
        requeue_delay: float = 0.5,
        after_commit: AfterCommit | None = None,
    ) -> None:
        self.inbox = inbox
        self.requeue_delay = requeue_delay
        self.after_commit = after_commit

    def delay(self, delivery_count: int) -> float:
        """The wait before handing back a delivery that failed (`delivery_count` before it)."""
        return min(MAX_REQUEUE_DELAY, self.requeue_delay * 2.0 ** min(delivery_count, 30))

    async def __call__(self, delivery: Delivery) -> None:
        message = replace(delivery.message, delivery_count=delivery.delivery_count)
        try:
            handled = await self.inbox.handle(message)
        except StaleMessage as exc:
            logger.error("%s: parked: %s", self.inbox.consumer, exc)
            await delivery.nack(requeue=False)
            return
        except Exception:
            logger.exception(
                "%s: message %s failed (delivery %d); handed back",
                self.inbox.consumer,
                message.message_id,
                delivery.delivery_count + 1,
            )
            await asyncio.sleep(self.delay(delivery.delivery_count))
            await delivery.nack(requeue=True)
            return
        if self.after_commit is not None:
            await self.after_commit(message, handled)
        await delivery.ack()
