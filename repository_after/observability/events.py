"""Fan-out of saga transitions to live subscribers (the dashboard's server-sent events).

The observer runs on the event loop inside the orchestrator's driver, so it must never block or
await: it only `put_nowait`s into bounded per-subscriber queues. A subscriber that falls behind
(its queue is full) loses its backlog and receives one `resync` message instead, telling the page
to reload its state; a slow browser can never make the orchestrator wait or hold unbounded
memory. The number of subscribers is bounded too.
"""

from __future__ import annotations

import asyncio
from typing import Any

from repository_after.service_layer.orchestrator import SagaTransition

RESYNC: dict[str, Any] = {"type": "resync"}


class TooManySubscribers(Exception):
    pass


def transition_message(t: SagaTransition) -> dict[str, Any]:
    e = t.event
    return {
        "type": "transition",
        "transaction_id": t.saga_id,
        "saga": t.definition,
        "event": e.kind.value,
        "step": e.step,
        "operation": e.operation,
        "outcome": None if e.outcome is None else e.outcome.value,
        "status_code": e.status_code,
        "before": t.before,
        "after": t.after,
        "at": e.at,
    }


class TransitionHub:
    def __init__(self, *, max_subscribers: int = 32, queue_size: int = 1000) -> None:
        self._max_subscribers = max_subscribers
        self._queue_size = queue_size
        self._subscribers: set[asyncio.Queue[dict[str, Any]]] = set()

    def subscribe(self) -> asyncio.Queue[dict[str, Any]]:
        if len(self._subscribers) >= self._max_subscribers:
            raise TooManySubscribers(f"at most {self._max_subscribers} live subscribers")
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=self._queue_size)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._subscribers.discard(queue)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, message: dict[str, Any]) -> None:
        for queue in self._subscribers:
            try:
                queue.put_nowait(message)
            except asyncio.QueueFull:
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(RESYNC)

    def observe(self, t: SagaTransition) -> None:
        if self._subscribers:
            self.publish(transition_message(t))
