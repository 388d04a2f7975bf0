"""The outbox and inbox tables, created with a participant's own tables in its store.

Give `messaging_schema(dialect)` to the kit's store with the service's schema
(`SqliteParticipantStore(path, schema=(*SERVICE, *messaging_schema("sqlite")))`): the business
change, the inbox row and the outbox rows then live in one database and commit in one local
transaction, which is the whole point.

- `outbox`: a message to publish. `message_id` UNIQUE (a step re-run writes the same message
  once); `published_at` NULL until the broker confirmed it; `attempts`, `last_error`,
  `next_attempt_at` (epoch seconds) for failed publications, retried forever with backoff;
  `claimed_by` / `claim_until` (epoch seconds) for the relay that is publishing it now.
- `inbox`: per consumer, a message applied, and the result its handler gave.
- `inbox_retention`: per consumer, up to when its inbox was purged (`retention`).
- `outbox_relay`: the one relay lease of a SQLite store (owner, expiry, fencing token).
Statements run on SQLite and PostgreSQL alike, except the outbox's id column.
"""

from __future__ import annotations

from repository_after.participant_kit.storage import Dialect

_ID = {
    "sqlite": "id INTEGER PRIMARY KEY AUTOINCREMENT",
    "postgres": "id BIGSERIAL PRIMARY KEY",
}


def messaging_schema(dialect: Dialect) -> tuple[str, ...]:
    return (
        f"CREATE TABLE IF NOT EXISTS outbox ({_ID[dialect]}, message_id TEXT NOT NULL UNIQUE,"
        " exchange TEXT NOT NULL, routing_key TEXT NOT NULL, headers TEXT NOT NULL,"
        " body TEXT NOT NULL, created_at TEXT NOT NULL, published_at TEXT,"
        " attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,"
        " next_attempt_at DOUBLE PRECISION NOT NULL DEFAULT 0, claimed_by TEXT,"
        " claim_until DOUBLE PRECISION NOT NULL DEFAULT 0)",
        "CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (id) WHERE published_at IS NULL",
        "CREATE TABLE IF NOT EXISTS inbox (consumer TEXT NOT NULL, message_id TEXT NOT NULL,"
        " result TEXT NOT NULL, received_at TEXT NOT NULL, PRIMARY KEY (consumer, message_id))",
        "CREATE INDEX IF NOT EXISTS inbox_received ON inbox (received_at)",
        "CREATE TABLE IF NOT EXISTS inbox_retention (consumer TEXT PRIMARY KEY,"
        " purged_before TEXT NOT NULL, purged BIGINT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS outbox_relay (name TEXT PRIMARY KEY, owner TEXT NOT NULL,"
        " expires_at DOUBLE PRECISION NOT NULL, token BIGINT NOT NULL)",
    )
