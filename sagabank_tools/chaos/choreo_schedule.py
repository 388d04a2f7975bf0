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
  are dead-lettered and parked, and the run fixes, then retries (redrives) them;
- `credit-before`: the account service's own `/credit` faults (`SAGABANK_CREDIT_FAILURE_*`,
  `before`, the default 30 %, seeded by the run's seed), which in choreography fail a credit's
  delivery before anything is decided (redelivered; `choreography.account_faults`);
- `reserve-before` (order runs): the inventory's `reserve` faults, the same way through the
  kit's `SAGABANK_PARTICIPANT_FAULTS`; `assign-before` / `enrol-before` (classes runs): the
  pupils service's `assign` and the classes service's `enrol`, the same way.
There is no `-after` family: an answer lost after the commit has no meaning in one transaction.
The two service fault families draw from the service's seeded generators in arrival order, so
which delivery meets a fault is not replayed exactly (the orchestration run's proxy faults are
keyed by transaction id; a choreographed service has no proxy in front of it).
Kills, cuts and restarts fire at points on the count of answered sagas, drawn from a
`random.Random` seeded by (seed, family), as the orchestration run's kills.
"""

from __future__ import annotations

import json
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
    CREDIT_BEFORE = "credit-before"
    RESERVE_BEFORE = "reserve-before"
    ASSIGN_BEFORE = "assign-before"
    ENROL_BEFORE = "enrol-before"


#: The families that fail a service's operation: (service, operation); `accounts` is the
#: account service's own `/credit` setting, the others the kit's `SAGABANK_PARTICIPANT_FAULTS`.
SERVICE_FAULTS = {
    BrokerFamily.CREDIT_BEFORE: ("accounts", "credit"),
    BrokerFamily.RESERVE_BEFORE: ("inventory", "reserve"),
    BrokerFamily.ASSIGN_BEFORE: ("pupils", "assign"),
    BrokerFamily.ENROL_BEFORE: ("classes", "enrol"),
}
_BROKER = tuple(f for f in BrokerFamily if f not in SERVICE_FAULTS)
#: Every family of a saga type's choreography run.
SAGA_FAMILIES: dict[str, tuple[BrokerFamily, ...]] = {
    "transfer": (*_BROKER, BrokerFamily.CREDIT_BEFORE),
    "order": (*_BROKER, BrokerFamily.CREDIT_BEFORE, BrokerFamily.RESERVE_BEFORE),
    "classes": (*_BROKER, BrokerFamily.ASSIGN_BEFORE, BrokerFamily.ENROL_BEFORE),
}
CHOREOGRAPHY_FAMILIES = SAGA_FAMILIES["transfer"]
#: The services' own fault rates per delivery (the account service's default; the same for the
#: inventory, whose kit draw stands only when drawn at both runs of a faulted job: about 9 %).
SERVICE_FAULT_RATE = 0.3
#: Points per 1000 sagas (at least one when the family is on).
PER_1000 = {
    BrokerFamily.KILL_SERVICE: 4,
    BrokerFamily.CONNECTION_DROP: 8,
    BrokerFamily.BROKER_RESTART: 2,
}
DUPLICATE_RATE = 0.1
POISON_PER_1000 = 5


def parse_choreography_families(text: str, saga: str = "transfer") -> tuple[BrokerFamily, ...]:
    names = {part.strip() for part in text.split(",") if part.strip()}
    if not names:
        raise ValueError("no fault family given")
    allowed = SAGA_FAMILIES[saga]
    unknown = names - {f.value for f in allowed}
    if unknown:
        raise ValueError(f"not a choreography family of {saga}: {', '.join(sorted(unknown))}")
    return tuple(f for f in allowed if f.value in names)


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

    def service_env(self) -> dict[str, str]:
        """The service process's own fault settings: off unless their family is on."""
        on = {SERVICE_FAULTS[f] for f in self.families if f in SERVICE_FAULTS}
        kit = {
            service: {
                "operations": [operation],
                "rate": SERVICE_FAULT_RATE,
                "mode": "before",
                "seed": self.seed,
            }
            for service, operation in on
            if service != "accounts"
        }
        credit = ("accounts", "credit") in on
        return {
            "SAGABANK_CREDIT_FAILURE_RATE": str(SERVICE_FAULT_RATE if credit else 0),
            "SAGABANK_CREDIT_FAILURE_MODE": "before",
            "SAGABANK_FAULT_SEED": str(self.seed),
            "SAGABANK_PARTICIPANT_FAULTS": json.dumps(kit),
        }
