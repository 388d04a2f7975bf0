"""The broker fault schedule of `sagabank chaos --mode choreography`: a pure function of the seed.

The families a choreographed run can meet (`BrokerFamily`):
- `kill-service`: the `serve --mode choreography` process SIGKILLed and started again on its
  data (the orchestration run's kills; in choreography the service, its consumers, relays and
  tracker are one process);
- `connection-drop`: every broker connection cut by the TCP proxy (`broker_proxy.py`);
- `broker-restart`: the run's private RabbitMQ node SIGKILLed and started again on its data;
- `duplicate-publish`: the relay publishes a seeded share of the messages twice;
- `crash-handler` / `crash-consumer` / `crash-relay`: the process SIGKILLs itself inside the
  n-th inbox transaction (before its commit), at the n-th commit before its ack, or at the n-th
  confirmed batch before it is marked (`messaging.faults`);
- `poison`: seeded sagas whose first call no handler can take until the operator's fix: they
  are dead-lettered and parked, and the run fixes, then retries (redrives) them.
Kills, cuts and restarts fire at points on the count of answered sagas, drawn from a
`random.Random` seeded by (seed, family), as the orchestration run's kills.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from repository_after.messaging.faults import (
    CONSUMER_AFTER_COMMIT,
    CONSUMER_BEFORE_COMMIT,
    RELAY_AFTER_PUBLISH,
)


class BrokerFamily(StrEnum):
    KILL_SERVICE = "kill-service"
    CONNECTION_DROP = "connection-drop"
    BROKER_RESTART = "broker-restart"
    DUPLICATE_PUBLISH = "duplicate-publish"
    CRASH_HANDLER = "crash-handler"
    CRASH_CONSUMER = "crash-consumer"
    CRASH_RELAY = "crash-relay"
    POISON = "poison"


CHOREOGRAPHY_FAMILIES: tuple[BrokerFamily, ...] = tuple(BrokerFamily)
#: Points per 1000 sagas (at least one when the family is on).
PER_1000 = {
    BrokerFamily.KILL_SERVICE: 4,
    BrokerFamily.CONNECTION_DROP: 8,
    BrokerFamily.BROKER_RESTART: 2,
}
DUPLICATE_RATE = 0.1
POISON_PER_1000 = 5


def parse_choreography_families(text: str) -> tuple[BrokerFamily, ...]:
    names = {part.strip() for part in text.split(",") if part.strip()}
    if not names:
        raise ValueError("no fault family given")
    unknown = names - {f.value for f in BrokerFamily}
    if unknown:
        raise ValueError(f"not a choreography family: {', '.join(sorted(unknown))}")
    return tuple(f for f in BrokerFamily if f.value in names)


@dataclass(frozen=True)
class ChoreoSchedule:
    seed: int
    families: tuple[BrokerFamily, ...]

    def points(self, family: BrokerFamily, sagas: int) -> tuple[int, ...]:
        if family not in self.families or sagas < 2:
            return ()
        wanted = max(1, sagas * PER_1000.get(family, 0) // 1000)
        rng = random.Random(f"{self.seed}:{family.value}")
        return tuple(sorted(rng.sample(range(1, sagas), min(wanted, sagas - 1))))

    def crashes(self) -> list[str]:
        """The crash points, one per process generation: `<point>@<n>`."""
        found = []
        for family, point, low, high in (
            (BrokerFamily.CRASH_RELAY, RELAY_AFTER_PUBLISH, 1, 3),
            (BrokerFamily.CRASH_CONSUMER, CONSUMER_AFTER_COMMIT, 2, 8),
            (BrokerFamily.CRASH_HANDLER, CONSUMER_BEFORE_COMMIT, 2, 8),
        ):
            if family in self.families:
                nth = random.Random(f"{self.seed}:{family.value}").randint(low, high)
                found.append(f"{point}@{nth}")
        return found

    @property
    def duplicate_rate(self) -> float:
        return DUPLICATE_RATE if BrokerFamily.DUPLICATE_PUBLISH in self.families else 0.0

    def poison(self, saga_ids: Sequence[str]) -> list[str]:
        if BrokerFamily.POISON not in self.families or not saga_ids:
            return []
        wanted = max(1, len(saga_ids) * POISON_PER_1000 // 1000)
        return sorted(random.Random(f"{self.seed}:poison").sample(list(saga_ids), wanted))
