"""A small participant for the messaging tests: every message it applies adds a row to
`effects` (no uniqueness: a message applied twice shows two rows) and, when its payload asks,
sends the next message through the outbox in the same transaction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repository_after.messaging import Message, Topology, enqueue, message_id_for
from repository_after.messaging.schema import messaging_schema
from repository_after.participant_kit.storage import Dialect, ParticipantStore, Tx

SERVICE_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS effects (message_id TEXT NOT NULL, amount BIGINT NOT NULL)",
)
TOPOLOGY = Topology.named("t", {"ledger": ("ledger.*",), "audit": ("audit.#",)}, delivery_limit=2)
LEDGER_QUEUE = "t.ledger"
AUDIT_QUEUE = "t.audit"


def schema(dialect: Dialect) -> tuple[str, ...]:
    return (*SERVICE_SCHEMA, *messaging_schema(dialect))


def open_store(kind: str, where: Path | str) -> ParticipantStore:
    if kind == "sqlite":
        from repository_after.participant_kit.storage import SqliteParticipantStore

        return SqliteParticipantStore(Path(where), schema=schema("sqlite"))
    from repository_after.participant_kit.postgres import PostgresParticipantStore

    return PostgresParticipantStore(str(where), schema=schema("postgres"), name="messaging")


class Poison(Exception):
    """What the handler raises for a payload marked `poison`."""


def apply(tx: Tx, message: Message) -> dict[str, Any]:
    """The business change: one `effects` row; `then` in the payload sends one message on."""
    if message.payload.get("poison"):
        raise Poison(f"message {message.message_id} always fails")
    amount = int(message.payload["amount"])
    tx.execute(
        "INSERT INTO effects (message_id, amount) VALUES (?, ?)", (message.message_id, amount)
    )
    then = message.payload.get("then")
    if then:
        enqueue(
            tx,
            TOPOLOGY.exchange,
            Message(
                message_id=message_id_for(saga_id=message.message_id, step=then, role="next"),
                routing_key=then,
                payload={"amount": amount},
            ),
        )
    return {"status": "applied", "amount": amount}


def ledger_message(saga: str, amount: int, **payload: Any) -> Message:
    return Message(
        message_id=message_id_for(saga_id=saga, step="ledger", role="action"),
        routing_key="ledger.entry",
        payload={"amount": amount, **payload},
    )


async def effects(store: ParticipantStore) -> dict[str, int]:
    """message id -> how many times it was applied."""
    rows = await store.read(
        lambda tx: tx.execute("SELECT message_id, COUNT(*) FROM effects GROUP BY message_id")
    )
    return {str(mid): int(n) for mid, n in rows}


async def seed_outbox(store: ParticipantStore, messages: list[Message]) -> None:
    def write(tx: Tx) -> None:
        for message in messages:
            enqueue(tx, TOPOLOGY.exchange, message)

    await store.transaction(write)


async def unpublished(store: ParticipantStore) -> int:
    rows = await store.read(
        lambda tx: tx.execute("SELECT COUNT(*) FROM outbox WHERE published_at IS NULL")
    )
    return int(rows[0][0])
