"""A consumer or an outbox relay in a process of its own, for the SIGKILL tests
(tests/e2e/test_messaging_crashes.py). It prints one JSON line per event on stdout:
`ready`, `committed` (id, duplicate), `acked`, `published` (ids). With `--hang` it stops for
good at the crash window under test (after the commit, before the ack; after the broker's
confirm, before the row is marked), where the test kills it.

    python -m tests.e2e.messaging_worker consume --db F --url AMQP [--hang]
    python -m tests.e2e.messaging_worker relay --db F --url AMQP --owner R [--hang]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from repository_after.messaging import (
    Delivery,
    Inbox,
    InboxConsumer,
    Message,
    OutboxRelay,
    RelayTiming,
)
from repository_after.messaging.inbox import Handled
from repository_after.messaging.outbox import Claimed
from repository_after.messaging.rabbitmq import RabbitMqBroker
from tests.messaging_support import LEDGER_QUEUE, TOPOLOGY, apply, open_store

#: The relays' claim ttl here: a dead relay's rows are claimed again this soon.
CLAIM_TTL = 1.0


def say(event: str, **fields: object) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


async def consume(db: Path, url: str, hang: bool) -> None:
    store = open_store("sqlite", db)
    broker = await RabbitMqBroker.connect(url)
    await broker.declare(TOPOLOGY)

    async def after_commit(message: Message, handled: Handled) -> None:
        say("committed", id=message.message_id, duplicate=handled.duplicate)
        if hang:
            await asyncio.Event().wait()

    consumer = InboxConsumer(
        Inbox(store, consumer="ledger", handler=apply), after_commit=after_commit
    )

    async def on_delivery(delivery: Delivery) -> None:
        await consumer(delivery)
        say("acked", id=delivery.message.message_id)

    await broker.consume(LEDGER_QUEUE, on_delivery, prefetch=1)
    say("ready")
    await asyncio.Event().wait()


async def relay(db: Path, url: str, owner: str, hang: bool) -> None:
    store = open_store("sqlite", db)
    broker = await RabbitMqBroker.connect(url)
    await broker.declare(TOPOLOGY)

    async def after_publish(rows: list[Claimed]) -> None:
        if rows:
            say("published", ids=[row.message.message_id for row in rows])
        if hang and rows:
            await asyncio.Event().wait()

    timing = RelayTiming(claim_ttl=CLAIM_TTL, poll_interval=0.05)
    worker = OutboxRelay(store, broker, owner=owner, timing=timing, after_publish=after_publish)
    say("ready")
    await worker.run(asyncio.Event())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["consume", "relay"])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--owner", default="relay")
    parser.add_argument("--hang", action="store_true")
    args = parser.parse_args()
    if args.role == "consume":
        asyncio.run(consume(args.db, args.url, args.hang))
    else:
        asyncio.run(relay(args.db, args.url, args.owner, args.hang))


if __name__ == "__main__":
    main()
