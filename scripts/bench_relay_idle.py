"""What an idle outbox relay's poll costs, per poll interval (docs/choreography.md, "Side by side").

    PYTHONPATH=. .venv/bin/python scripts/bench_relay_idle.py [--seconds 10] [--relays 3]

Since a relay is woken by its own process's commits (`OutboxRelay.notify`), its poll only finds
rows written elsewhere (another process or replica on the store, an operator's command, a failed
row's backoff coming due); the rest of the time it is an idle read (`outbox.any_due`). Here
`--relays` relays, each on its own SQLite file with an empty outbox (a `serve --role all`
process runs three: the account database's, the inventory's and the orders'), run idle for
`--seconds` per interval on the in-memory broker; printed: the process's CPU time per second
(threads included: SQLite reads run on the stores' threads) and the passes made.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

from repository_after.messaging import OutboxRelay, RelayTiming, messaging_schema
from repository_after.messaging.memory_broker import InMemoryBroker
from repository_after.participant_kit.storage import SqliteParticipantStore

INTERVALS = (0.0, 0.05, 0.2, 1.0)


async def idle_cost(poll: float, seconds: float, relays: int) -> tuple[float, int]:
    """CPU ms per second and the idle reads made, with `relays` relays polling every `poll` s
    (0: no relay at all, the baseline of the process's own loop)."""
    with tempfile.TemporaryDirectory() as tmp:
        stores = [
            SqliteParticipantStore(Path(tmp) / f"s{i}.db", schema=messaging_schema("sqlite"))
            for i in range(relays)
        ]
        for store in stores:  # opened (schema created) before the clock starts
            await store.read(lambda tx: tx.execute("SELECT 1"))
        running = [
            OutboxRelay(s, InMemoryBroker(), owner=f"r{i}", timing=RelayTiming(poll_interval=poll))
            for i, s in enumerate(stores)
        ]
        reads = 0

        def counting(relay: OutboxRelay) -> None:
            inner = relay.publish_due

            async def counted() -> object:
                nonlocal reads
                reads += 1
                return await inner()

            relay.publish_due = counted  # type: ignore[method-assign,assignment]

        for relay in running:
            counting(relay)
        stop = asyncio.Event()
        cpu0 = time.process_time()
        tasks = [asyncio.create_task(r.run(stop)) for r in running] if poll > 0 else []
        await asyncio.sleep(seconds)  # the measured idle time itself, not a synchronisation
        stop.set()
        await asyncio.gather(*tasks)
        cpu = time.process_time() - cpu0
        for store in stores:
            await store.close()
    return cpu * 1000 / seconds, reads


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--relays", type=int, default=3)
    args = parser.parse_args()
    for poll in INTERVALS:
        cpu, reads = asyncio.run(idle_cost(poll, args.seconds, args.relays))
        label = f"poll {poll:.2f} s" if poll else "no relay"
        sys.stdout.write(f"{label}: {cpu:.2f} ms CPU per s, {reads} idle passes\n")


if __name__ == "__main__":
    main()
