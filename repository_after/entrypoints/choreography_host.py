"""A `sagabank serve --mode choreography` process's messaging, run in the app's lifespan.

`start_choreography` connects to the broker (`SAGABANK_BROKER_URL`), builds the runtime of what
this process hosts (`choreography.wiring.runtime_for`: the account service and the hosted
participants in roles `all` / `accounts`, the tracker in roles `all` / `orchestrator`), declares
the topology and starts the consumers, relays and the tracker's scan. `Choreographed.stop` stops
them, then closes the broker connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from repository_after.bootstrap import Container, connect_broker, saga_types
from repository_after.choreography.launch import ChoreographedOrchestrator
from repository_after.choreography.runtime import Runtime
from repository_after.choreography.wiring import runtime_for
from repository_after.config import Settings
from repository_after.entrypoints.participants import Hosted
from repository_after.messaging.ports import Broker
from repository_after.observability.metrics import MessagingFigures


@dataclass
class Choreographed:
    runtime: Runtime
    broker: Broker

    async def stop(self) -> None:
        await self.runtime.stop()
        await self.broker.close()

    async def figures(self) -> MessagingFigures:
        """What `/metrics` shows of the messaging: each outbox's backlog, read now, and the
        dead letters the tracker counted at its last scan (none in a process without one)."""
        backlogs = await self.runtime.outbox_backlogs()
        tracker = self.runtime.tracker
        return MessagingFigures(
            outbox={name: (b.unpublished, b.failing) for name, b in backlogs.items()},
            dead_letters=None if tracker is None else tracker.dead_letters.seen,
            tracker_redrives=None if tracker is None else tracker.dead_letters.redrives(),
            dead_letters_discarded=None if tracker is None else tracker.dead_letters.discarded,
        )


async def start_choreography(
    settings: Settings, container: Container, hosted: Sequence[Hosted]
) -> Choreographed:
    orchestrator = container.orchestrator
    assert orchestrator is None or isinstance(orchestrator, ChoreographedOrchestrator)
    broker = await connect_broker(settings)
    try:
        runtime = await runtime_for(
            settings,
            broker=broker,
            types=saga_types(),
            account_store=container.account_store,
            kit_services=[one.service for one in hosted if one.service is not None],
            orchestrator=orchestrator,
            account_faults=container.faults,
        )
        await runtime.start()
    except BaseException:
        await broker.close()
        raise
    return Choreographed(runtime, broker)
