"""Whose is a tracker's lease: a worker and a process generation, so a restart need not wait.

The tracker takes a saga's lease for every write (`SagaLog.acquire`). A process SIGKILLed while
holding one left it for its full ttl (`SAGABANK_LEASE_TTL`, 10 s): its successor, the same
worker id, could not project that saga until then (the chaos run's `not projected yet
(SagaBusy …)`, docs/chaos.md). Letting the same owner name take its own lease back is not
safe: `sagabank sagas retry` (the CLI) builds a tracker with the same worker id as the server it
operates, and a retry holds the saga's lease across its redrive precisely so that the server's
scan cannot park the saga in between.

So the owner names the process too:
- `tracker-<worker>@serve-<generation>` for a server (`serve_owner`), the generation its start
  time in nanoseconds, zero-padded: a restarted process has a greater one;
- `tracker-<worker>@op-<pid>-<generation>` for an operator's command (`operator_owner`).
When a server's runtime is built (`wiring.runtime_for`, before its consumers start), it releases
the live leases of its worker's EARLIER server generations (`take_over_earlier`; a fenced
release: only that exact lease). An operator's lease is never taken over, nor a later
generation's, nor another worker's: those wait for their ttl, as before.

Safe because a worker id names one live server: host:port by default (one listener per port),
or `SAGABANK_WORKER_ID`, which the operator keeps unique, the rule the orchestrator's own
reclaim at start rests on (`service_layer.worker`, `include_own`). If two servers did share one
(the second fails to bind its port after its start-up), the only effect is the fence: the
first's write under a released lease is refused (`LeaseLost`) and retried in place (a
projection) or on the next scan; the tracker writes only the saga log, and a re-park is
projected forward (`dead_letters.resumed_event`). Owners written before generations existed
(`tracker-<worker>`) are not matched and expire by their ttl.
"""

from __future__ import annotations

import logging
import os
import time

from repository_after.service_layer.saga_ports import SagaLog

logger = logging.getLogger(__name__)

_SERVE = "@serve-"


def serve_owner(worker_id: str, *, generation: int | None = None) -> str:
    """A server's tracker owner: this worker, this process's generation."""
    return f"tracker-{worker_id}{_SERVE}{time.time_ns() if generation is None else generation:020d}"


def operator_owner(worker_id: str) -> str:
    """An operator's command's tracker owner (never taken over by a server)."""
    return f"tracker-{worker_id}@op-{os.getpid()}-{time.time_ns():020d}"


async def take_over_earlier(log: SagaLog, owner: str) -> int:
    """Release the live leases of `owner`'s worker's earlier server generations; how many."""
    prefix, _, mine = owner.rpartition(_SERVE)
    if not prefix or not mine.isdigit():
        return 0  # not a server's owner: nothing to take over
    held = await log.leases_held(owner_prefix=f"{prefix}{_SERVE}")
    earlier = [
        lease
        for lease in held
        if (generation := lease.owner.removeprefix(f"{prefix}{_SERVE}")).isdigit()
        and int(generation) < int(mine)
    ]
    if earlier:
        await log.release(earlier)
        logger.warning(
            "tracker %s: took over %d saga leases of earlier generations of its worker (%s)",
            owner,
            len(earlier),
            ", ".join(sorted({lease.owner for lease in earlier})),
        )
    return len(earlier)
