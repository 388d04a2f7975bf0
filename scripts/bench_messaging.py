"""What publisher confirms and consumer prefetch cost: the messaging foundation on RabbitMQ.

    PYTHONPATH=. .venv/bin/python scripts/bench_messaging.py [--messages 2000]
        [--repetitions 3]

Needs RabbitMQ on 127.0.0.1:5672 (guest) and rabbitmqctl (root): each repetition runs in a
vhost of its own, deleted afterwards. Per repetition, alternating the variants so a slow or fast
spell of the machine touches both:
- relay: `--messages` outbox rows on a SQLite file published by `OutboxRelay` (confirmed,
  persistent) with a batch of 1 (one confirm awaited at a time) and of 64 (confirms pipelined);
- consumer: the same messages applied through `InboxConsumer` (one SQLite transaction each: the
  business row, the inbox row), prefetch 1 and 32 (concurrent deliveries share group commits).
Messages per second for each; medians and the ratios are printed last.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from repository_after.messaging import (
    Inbox,
    InboxConsumer,
    Message,
    OutboxRelay,
    RelayTiming,
    Topology,
    enqueue,
    messaging_schema,
)
from repository_after.messaging.inbox import Handled
from repository_after.messaging.rabbitmq import RabbitMqBroker
from repository_after.participant_kit.storage import SqliteParticipantStore, Tx

CTL = "/usr/sbin/rabbitmqctl"
TOPOLOGY = Topology.named("bench", {"ledger": ("ledger.*",)})
LEDGER_QUEUE = "bench.ledger"
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS effects (message_id TEXT NOT NULL, amount BIGINT NOT NULL)",
    *messaging_schema("sqlite"),
)


def open_store(db: Path) -> SqliteParticipantStore:
    return SqliteParticipantStore(db, schema=SCHEMA)


def apply(tx: Tx, message: Message) -> dict[str, Any]:
    amount = int(message.payload["amount"])
    tx.execute(
        "INSERT INTO effects (message_id, amount) VALUES (?, ?)", (message.message_id, amount)
    )
    return {"status": "applied"}


async def seed(store: SqliteParticipantStore, count: int) -> None:
    def write(tx: Tx) -> None:
        for i in range(count):
            message = Message(uuid.uuid4().hex, "ledger.entry", {"amount": i})
            enqueue(tx, TOPOLOGY.exchange, message)

    await store.transaction(write)


def ctl(*args: str) -> None:
    subprocess.run([CTL, "-q", *args], check=True, capture_output=True, timeout=60)


async def relay_rate(url: str, db: Path, count: int, batch: int) -> float:
    store = open_store(db)
    broker = await RabbitMqBroker.connect(url)
    try:
        await broker.declare(TOPOLOGY)
        await seed(store, count)
        relay = OutboxRelay(store, broker, owner="bench", timing=RelayTiming(batch=batch))
        started = time.perf_counter()
        while relay.published < count:
            await relay.publish_due()
        return count / (time.perf_counter() - started)
    finally:
        await broker.close()
        await store.close()


async def consumer_rate(url: str, db: Path, count: int, prefetch: int) -> float:
    store = open_store(db)
    broker = await RabbitMqBroker.connect(url)
    applied = 0
    done = asyncio.Event()

    async def counted(_message: object, _handled: Handled) -> None:
        nonlocal applied
        applied += 1
        if applied == count:
            done.set()

    consumer = InboxConsumer(Inbox(store, consumer="bench", handler=apply), after_commit=counted)
    try:
        started = time.perf_counter()
        subscription = await broker.consume(LEDGER_QUEUE, consumer, prefetch=prefetch)
        await done.wait()
        elapsed = time.perf_counter() - started
        await subscription.cancel()
        return count / elapsed
    finally:
        await broker.close()
        await store.close()


async def repetition(count: int) -> dict[str, float]:
    rates: dict[str, float] = {}
    for batch, prefetch in ((1, 1), (64, 32)):
        vhost = f"sagabank_bench_{uuid.uuid4().hex[:12]}"
        ctl("add_vhost", vhost)
        try:
            ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
            url = f"amqp://guest:guest@127.0.0.1:5672/{vhost}"
            with tempfile.TemporaryDirectory() as tmp:
                rates[f"relay batch {batch}"] = await relay_rate(
                    url, Path(tmp) / "out.db", count, batch
                )
                rates[f"consumer prefetch {prefetch}"] = await consumer_rate(
                    url, Path(tmp) / "in.db", count, prefetch
                )
        finally:
            ctl("delete_vhost", vhost)
    return rates


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--repetitions", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for n in range(args.repetitions):
        rates = asyncio.run(repetition(args.messages))
        runs.append(rates)
        say(f"run {n + 1}: " + ", ".join(f"{k} {v:,.0f}/s" for k, v in rates.items()))
    medians = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
    say("medians: " + ", ".join(f"{k} {v:,.0f}/s" for k, v in medians.items()))
    say(
        f"relay: batch 64 / batch 1 = {medians['relay batch 64'] / medians['relay batch 1']:.1f}x;"
        " consumer: prefetch 32 / prefetch 1 = "
        f"{medians['consumer prefetch 32'] / medians['consumer prefetch 1']:.1f}x"
    )


if __name__ == "__main__":
    main()
