"""Real processes, real RabbitMQ (a vhost per test), a real SQLite file, SIGKILL in the crash
windows of exactly-once delivery:
- a consumer killed after its transaction committed, before its ack: RabbitMQ redelivers the
  message to the restarted consumer, whose inbox makes it a no-op (applied once);
- a relay killed after the broker confirmed, before it marked the row published: another relay
  publishes the row again, and the consumer applies the message once, the copy a duplicate."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from repository_after.messaging.rabbitmq import RabbitMqBroker
from tests.messaging_support import (
    LEDGER_QUEUE,
    TOPOLOGY,
    effects,
    ledger_message,
    open_store,
    seed_outbox,
    unpublished,
)
from tests.rabbit import fresh_vhost

pytestmark = [pytest.mark.e2e, pytest.mark.chaos, pytest.mark.timeout(120)]


class Worker:
    """`tests.e2e.messaging_worker` in its own process; its events read line by line."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.e2e.messaging_worker", *args],
            stdout=subprocess.PIPE,
            text=True,
            env=os.environ.copy(),
        )
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.events.put(json.loads(line))

    def expect(self, event: str, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {event!r} from the worker within {timeout} s")
            try:
                got = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if got["event"] == event:
                return got

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.reader.join(timeout=10)  # the pipe ends with the process
        assert self.process.stdout is not None
        self.process.stdout.close()


async def _queue_is_empty(url: str) -> bool:
    """Nothing left to deliver in the ledger queue (`basic.get`, not the broker's lagging stats)."""
    import aio_pika

    connection = await aio_pika.connect(url)
    try:
        channel = await connection.channel()
        left = await (await channel.get_queue(LEDGER_QUEUE)).get(fail=False)
        return left is None
    finally:
        await connection.close()


async def _publish(url: str, *messages: Any) -> None:
    broker = await RabbitMqBroker.connect(url)
    try:
        await broker.declare(TOPOLOGY)
        for message in messages:
            await broker.publish(TOPOLOGY.exchange, message)
    finally:
        await broker.close()


async def _effects(db: Path) -> dict[str, int]:
    store = open_store("sqlite", db)
    try:
        return await effects(store)
    finally:
        await store.close()


def test_a_consumer_killed_between_commit_and_ack_applies_the_redelivery_once(
    tmp_path: Path,
) -> None:
    db = tmp_path / "ledger.db"
    message = ledger_message("k1", 11)
    with fresh_vhost() as url:
        asyncio.run(_publish(url, message))
        crashing = Worker("consume", "--db", str(db), "--url", url, "--hang")
        try:
            committed = crashing.expect("committed")
        finally:
            crashing.kill()
        assert committed == {"event": "committed", "id": message.message_id, "duplicate": False}
        assert asyncio.run(_effects(db)) == {message.message_id: 1}

        restarted = Worker("consume", "--db", str(db), "--url", url)
        try:
            again = restarted.expect("committed")
            restarted.expect("acked")
        finally:
            restarted.kill()
        assert again == {"event": "committed", "id": message.message_id, "duplicate": True}
        assert asyncio.run(_effects(db)) == {message.message_id: 1}
        assert asyncio.run(_queue_is_empty(url))


def test_a_relay_killed_between_publish_and_mark_republishes_and_the_copy_is_absorbed(
    tmp_path: Path,
) -> None:
    db = tmp_path / "ledger.db"
    message = ledger_message("k2", 13)

    async def seed() -> None:
        store = open_store("sqlite", db)
        try:
            await seed_outbox(store, [message])
        finally:
            await store.close()

    async def left() -> int:
        store = open_store("sqlite", db)
        try:
            return await unpublished(store)
        finally:
            await store.close()

    asyncio.run(seed())
    with fresh_vhost() as url:
        asyncio.run(_publish(url))  # the topology, before any relay publishes
        dying = Worker("relay", "--db", str(db), "--url", url, "--owner", "r1", "--hang")
        try:
            assert dying.expect("published")["ids"] == [message.message_id]
        finally:
            dying.kill()
        assert asyncio.run(left()) == 1  # confirmed by the broker, never marked
        successor = Worker("relay", "--db", str(db), "--url", url, "--owner", "r2")
        try:
            assert successor.expect("published")["ids"] == [message.message_id]
            deadline = time.monotonic() + 30
            while asyncio.run(left()) and time.monotonic() < deadline:
                time.sleep(0.05)  # polling the file for the mark, bounded
        finally:
            successor.kill()
        assert asyncio.run(left()) == 0

        consumer = Worker("consume", "--db", str(db), "--url", url)
        try:
            first = consumer.expect("committed")
            consumer.expect("acked")
            second = consumer.expect("committed")
            consumer.expect("acked")
        finally:
            consumer.kill()
        assert asyncio.run(_queue_is_empty(url))
    assert (first["duplicate"], second["duplicate"]) == (False, True)
    assert first["id"] == second["id"] == message.message_id
    assert asyncio.run(_effects(db)) == {message.message_id: 1}
