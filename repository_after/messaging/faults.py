"""Seeded messaging faults for `sagabank chaos --mode choreography`, off unless configured.

`SAGABANK_MESSAGING_FAULTS` (JSON, read once per process) switches them on; without it every
hook is absent and nothing here runs. All decisions are pure functions of the seed and a
message's id (or a count of occurrences in this process), so a run replays from its seed:
- `duplicate_rate`: the relay publishes a confirmed row a second time (same message id) before
  it marks it: a duplicate delivery the receiver's inbox must absorb;
- `crash`: `"<point>@<n>"` SIGKILLs this process at the n-th occurrence of a crash point:
  `consumer-before-commit` (inside the inbox transaction, before the handler's change),
  `consumer-after-commit` (the inbox transaction committed, the delivery not yet acked) or
  `relay-after-publish` (the broker confirmed, the outbox row not yet marked);
- `poison`: saga ids whose calls to a service no handler can take (the handler raises), so they
  are redelivered up to the delivery limit and dead-lettered, until the file `fixed` exists
  (the operator's fix), after which a redriven copy is handled normally.
Each fault is logged (`chaos: ...`) before it acts, so the run can count what fired.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repository_after.messaging.envelope import Message
from repository_after.messaging.inbox import Handled
from repository_after.messaging.outbox import Claimed
from repository_after.messaging.ports import Broker
from repository_after.messaging.relay import AfterPublish
from repository_after.participant_kit.storage import Tx

logger = logging.getLogger(__name__)

ENV = "SAGABANK_MESSAGING_FAULTS"
CONSUMER_BEFORE_COMMIT = "consumer-before-commit"
CONSUMER_AFTER_COMMIT = "consumer-after-commit"
RELAY_AFTER_PUBLISH = "relay-after-publish"
CRASH_POINTS = (CONSUMER_BEFORE_COMMIT, CONSUMER_AFTER_COMMIT, RELAY_AFTER_PUBLISH)
Handler = Callable[[Tx, Message], dict[str, Any]]


class PoisonedMessage(RuntimeError):
    """A message this deployment cannot handle (until the fix): redelivered, then parked."""


def _announce(text: str) -> None:
    """Written straight to stderr (the process's log): the run counts these lines."""
    sys.stderr.write(f"chaos: {text}\n")
    sys.stderr.flush()


@dataclass
class MessagingFaults:
    seed: int
    duplicate_rate: float = 0.0
    crash: str | None = None  # "<point>@<n>"
    poison: frozenset[str] = frozenset()
    fixed: str = ""  # the file whose existence ends the poison
    seen: Counter[str] = field(default_factory=Counter)

    @classmethod
    def from_env(cls) -> MessagingFaults | None:
        text = os.environ.get(ENV, "").strip()
        if not text:
            return None
        raw = json.loads(text)
        return cls(
            seed=int(raw["seed"]),
            duplicate_rate=float(raw.get("duplicate_rate", 0.0)),
            crash=raw.get("crash") or None,
            poison=frozenset(raw.get("poison", ())),
            fixed=str(raw.get("fixed", "")),
        )

    def duplicated(self, message_id: str) -> bool:
        digest = hashlib.sha256(f"{self.seed}\x1fdup\x1f{message_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / float(1 << 64) < self.duplicate_rate

    def reached(self, point: str) -> None:
        """Count an occurrence of `point`; SIGKILL this process at the configured one."""
        if self.crash is None:
            return
        name, _, nth = self.crash.partition("@")
        if name != point:
            return
        self.seen[point] += 1
        if self.seen[point] == int(nth):
            _announce(f"crash point {point} #{nth}: SIGKILL")
            os.kill(os.getpid(), signal.SIGKILL)

    def poisoned(self, saga_id: str) -> bool:
        return saga_id in self.poison and not (self.fixed and Path(self.fixed).exists())

    # -- the hooks the runtime installs ------------------------------------------------------

    async def after_commit(self, _message: Message, _handled: Handled) -> None:
        self.reached(CONSUMER_AFTER_COMMIT)

    def after_publish(self, broker: Broker) -> AfterPublish:
        async def hook(rows: list[Claimed]) -> None:
            for row in rows:
                if self.duplicated(row.message.message_id):
                    _announce(f"duplicate publication {row.message.message_id}")
                    await broker.publish(row.exchange, row.message)
            self.reached(RELAY_AFTER_PUBLISH)

        return hook

    def poisoning(self, handler: Handler) -> Handler:
        """`handler` with the poison and the `consumer-before-commit` crash point."""

        def handle(tx: Tx, message: Message) -> dict[str, Any]:
            self.reached(CONSUMER_BEFORE_COMMIT)
            saga_id = str(message.payload.get("saga_id", ""))
            if self.poisoned(saga_id):
                _announce(f"poisoned message {message.message_id} of saga {saga_id}")
                raise PoisonedMessage(f"saga {saga_id}: message {message.message_id} is poison")
            return handler(tx, message)

        return handle
