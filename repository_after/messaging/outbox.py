"""The outbox: messages written in the business transaction, published later by a relay.

`enqueue(tx, exchange, message)` inside a handler's transaction is the only way a participant
sends: the message is published if and only if the business change committed. The rest is the
relay's (`relay.OutboxRelay`), as plain functions of a transaction so that a test can hold one
open:

- `claim(tx, ...)`: the next unpublished rows, due (`next_attempt_at <= now`) and not claimed
  by a live relay (`claim_until <= now`), marked as this relay's until `now + ttl`. On
  PostgreSQL the rows are picked with `FOR UPDATE SKIP LOCKED`: two relays claiming at once
  never pick one row, and neither waits for the other. On SQLite only the holder of the relay
  lease claims (`hold_lease`, in the same transaction: a relay that lost its lease claims
  nothing).
- `mark_published(tx, ids, now)` after the broker's confirm. A relay killed between the confirm
  and this leaves the row unpublished: once its claim expires another relay publishes it again,
  and the consumer's inbox absorbs the copy.
- `mark_failed(tx, id, error, retry_at)`: a publication the broker did not confirm. The row is
  never dropped, whatever the number of attempts: it is retried at `retry_at` (backoff), and its
  attempts and last error are visible (`backlog`).
- `due_now(tx, now)`: once a publication is confirmed again after failures, every row still
  backing off is due at once, so the outbox drains in the order it was written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from repository_after.messaging.envelope import Message
from repository_after.participant_kit.storage import Tx

#: The relay lease's row name (one relay per SQLite store).
LEASE = "outbox"


def enqueue(tx: Tx, exchange: str, message: Message) -> None:
    """Write `message` to the outbox in the caller's transaction."""
    tx.execute(
        "INSERT INTO outbox (message_id, exchange, routing_key, headers, body, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            message.message_id,
            exchange,
            message.routing_key,
            orjson.dumps(dict(message.headers)).decode(),
            message.body().decode(),
            message.created_at,
        ),
    )


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    exchange: str
    message: Message
    attempts: int


def hold_lease(tx: Tx, *, owner: str, now: float, ttl: float) -> bool:
    """Take or renew the store's one relay lease for `owner`; False while another relay holds
    an unexpired one. A new holder bumps the token, so the lease's history is visible."""
    rows = tx.execute("SELECT owner, expires_at FROM outbox_relay WHERE name = ?", (LEASE,))
    if not rows:
        tx.execute(
            "INSERT INTO outbox_relay (name, owner, expires_at, token) VALUES (?, ?, ?, 1)",
            (LEASE, owner, now + ttl),
        )
        return True
    holder, expires_at = rows[0]
    if holder != owner and expires_at > now:
        return False
    tx.execute(
        "UPDATE outbox_relay SET owner = ?, expires_at = ?,"
        " token = token + CASE WHEN owner = ? THEN 0 ELSE 1 END WHERE name = ?",
        (owner, now + ttl, owner, LEASE),
    )
    return True


def any_due(tx: Tx, *, now: float) -> bool:
    """Whether a row is waiting to be claimed: the relay's read before its claiming write, so an
    idle relay writes nothing (on SQLite a claim renews the lease: one fsync per poll)."""
    rows = tx.execute(
        "SELECT 1 FROM outbox WHERE published_at IS NULL AND next_attempt_at <= ?"
        " AND claim_until <= ? LIMIT 1",
        (now, now),
    )
    return bool(rows)


def claim(tx: Tx, *, owner: str, now: float, ttl: float, limit: int) -> list[Claimed]:
    """Claim up to `limit` due rows for `owner` until `now + ttl` (see the module docstring)."""
    if tx.dialect == "sqlite" and not hold_lease(tx, owner=owner, now=now, ttl=ttl):
        return []
    skip_locked = " FOR UPDATE SKIP LOCKED" if tx.dialect == "postgres" else ""
    rows = tx.execute(
        "UPDATE outbox SET claimed_by = ?, claim_until = ? WHERE id IN (SELECT id FROM outbox"
        " WHERE published_at IS NULL AND next_attempt_at <= ? AND claim_until <= ?"
        f" ORDER BY id LIMIT ?{skip_locked})"
        " RETURNING id, exchange, message_id, routing_key, headers, body, created_at, attempts",
        (owner, now + ttl, now, now, limit),
    )
    return sorted((_claimed(row) for row in rows), key=lambda c: c.id)


def _claimed(row: Sequence[Any]) -> Claimed:
    id_, exchange, message_id, routing_key, headers, body, created_at, attempts = row
    message = Message(
        message_id=message_id,
        routing_key=routing_key,
        payload=orjson.loads(body),
        headers=orjson.loads(headers),
        created_at=created_at,
    )
    return Claimed(id=int(id_), exchange=exchange, message=message, attempts=int(attempts))


def mark_published(tx: Tx, ids: Sequence[int], *, now_text: str) -> None:
    for id_ in ids:
        tx.execute(
            "UPDATE outbox SET published_at = ?, claimed_by = NULL, claim_until = 0"
            " WHERE id = ? AND published_at IS NULL",
            (now_text, id_),
        )


def mark_failed(tx: Tx, id_: int, *, error: str, retry_at: float) -> None:
    tx.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?,"
        " claimed_by = NULL, claim_until = 0 WHERE id = ? AND published_at IS NULL",
        (error[:500], retry_at, id_),
    )


def due_now(tx: Tx, *, now: float) -> int:
    """Make every row backing off from a failed publication due at once: the broker answers
    again, so the outbox drains oldest first (`claim` orders by id) instead of in the order the
    backoffs happen to end, where a row that failed fewer times (a newer one: the tracker's
    time-out, say) would overtake an older one (the call it times out)."""
    made_due = tx.execute(
        "UPDATE outbox SET next_attempt_at = 0"
        " WHERE published_at IS NULL AND attempts > 0 AND next_attempt_at > ? RETURNING id",
        (now,),
    )
    return len(made_due)


@dataclass(frozen=True, slots=True)
class Backlog:
    """What waits in an outbox: visible, so a publication failing for long is seen."""

    unpublished: int
    failing: int  # unpublished rows whose last publication failed
    max_attempts: int
    last_error: str | None


def backlog(tx: Tx) -> Backlog:
    rows = tx.execute(
        "SELECT COUNT(*), COALESCE(SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), 0),"
        " COALESCE(MAX(attempts), 0) FROM outbox WHERE published_at IS NULL"
    )
    last = tx.execute(
        "SELECT last_error FROM outbox WHERE published_at IS NULL AND last_error IS NOT NULL"
        " ORDER BY attempts DESC, id LIMIT 1"
    )
    count, failing, max_attempts = rows[0]
    return Backlog(int(count), int(failing), int(max_attempts), last[0][0] if last else None)
