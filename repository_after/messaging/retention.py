"""Retention of a consumer's inbox: rows go only once no copy of their message can come back.

An inbox row is what turns a second copy of a message into a no-op. Copies come from
redeliveries (until acked), a relay's second publication (within its claim ttl) and an
operator's `redrive` (any time, of a message that never applied: it has no row). So a row must
outlive every automatic retry: `purge_inbox` refuses a cutoff closer than `min_horizon` (the
deployment's retry horizon, `Settings.retry_horizon()`, as `sagabank gc` does for the
participants' records).

And a copy that comes later still? The purge records its cutoff in `inbox_retention`
(the latest one, per consumer); `Inbox.handle` then refuses any message created before that
cutoff plus a clock margin (`inbox.StaleMessage`: parked in the dead-letter queue for an
operator), because its row may be among those purged. Nothing purged can apply twice.
"""

from __future__ import annotations

from datetime import datetime

from repository_after.participant_kit.storage import ParticipantStore, Tx

#: Whether the store has an inbox table, per dialect choreography runs on.
_HAS_INBOX = {
    "sqlite": "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'inbox'",
    "postgres": "SELECT to_regclass('inbox') IS NOT NULL",
}


class HorizonTooShort(ValueError):
    """The cutoff is closer than the retry horizon: a retry could outlive the row."""


async def purge_inbox(
    store: ParticipantStore,
    *,
    consumer: str,
    before: str,
    now: datetime,
    min_horizon: float,
) -> int:
    """Delete `consumer`'s inbox rows received before `before` (ISO 8601 UTC, strictly), in one
    transaction with the fence that refuses older messages from then on; how many went."""
    age = (now - datetime.fromisoformat(before)).total_seconds()
    if age < min_horizon:
        raise HorizonTooShort(
            f"the cutoff {before} is {age:.0f} s ago, closer than the retry horizon "
            f"({min_horizon:.0f} s): a redelivery could outlive the row that absorbs it"
        )

    def purge(tx: Tx) -> int:
        rows = tx.execute(
            "SELECT COUNT(*) FROM inbox WHERE consumer = ? AND received_at < ?", (consumer, before)
        )
        count = int(rows[0][0])
        tx.execute("DELETE FROM inbox WHERE consumer = ? AND received_at < ?", (consumer, before))
        tx.execute(
            "INSERT INTO inbox_retention (consumer, purged_before, purged) VALUES (?, ?, ?)"
            " ON CONFLICT (consumer) DO UPDATE SET purged_before = CASE WHEN"
            " excluded.purged_before > inbox_retention.purged_before THEN excluded.purged_before"
            " ELSE inbox_retention.purged_before END,"
            " purged = inbox_retention.purged + excluded.purged",
            (consumer, before, count),
        )
        return count

    return await store.transaction(purge)


async def purge_inboxes(
    store: ParticipantStore, *, before: str, now: datetime, min_horizon: float
) -> dict[str, int]:
    """`purge_inbox` for every consumer with rows in `store`'s inbox: consumer -> rows purged;
    {} for a store without an inbox (a service that never ran choreographed)."""

    def consumers(tx: Tx) -> list[str]:
        probe = _HAS_INBOX.get(tx.dialect)  # MariaDB: never choreographed (yet)
        if probe is None or not tx.execute(probe)[0][0]:
            return []
        return [str(row[0]) for row in tx.execute("SELECT DISTINCT consumer FROM inbox")]

    return {
        consumer: await purge_inbox(
            store, consumer=consumer, before=before, now=now, min_horizon=min_horizon
        )
        for consumer in await store.read(consumers)
    }
