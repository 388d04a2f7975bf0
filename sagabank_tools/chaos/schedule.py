"""The fault schedule of a chaos run: a pure function of the seed.

A proxy fault is decided from a hash of (seed, transaction id, operation, n-th delivery of that
pair), never from arrival order, so concurrent requests and restarts do not reshuffle it: the
same seed gives the same schedule. Process kills are points on the count of answered sagas,
drawn from a `random.Random` seeded by (seed, family). At most one proxy fault per delivery.

An operation is named by its path at the account service's process, without the leading slash:
`credit`, `inventory/reserve`, `orders/create`. The before/after families hit one action each
(`ACTION_FAULTS`): the transfer's and the order's pivot, `credit`, and the order's reservation,
`inventory/reserve`, a compensatable step; the classes saga's compensatable `pupils/assign` and
its pivot `classes/enrol`; delay and duplicate hit every operation. Each saga type has the
families that can reach it (`SAGA_FAMILIES`): a transfer never reserves stock.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from enum import StrEnum


class Family(StrEnum):
    CREDIT_BEFORE = "credit-before"
    CREDIT_AFTER = "credit-after"
    DELAY = "delay"
    DUPLICATE = "duplicate"
    KILL_ORCHESTRATOR = "kill-orchestrator"
    KILL_ACCOUNTS = "kill-accounts"
    RESERVE_BEFORE = "reserve-before"
    RESERVE_AFTER = "reserve-after"
    ASSIGN_BEFORE = "assign-before"
    ASSIGN_AFTER = "assign-after"
    ENROL_BEFORE = "enrol-before"
    ENROL_AFTER = "enrol-after"


#: operation -> its (before, after) families: failing before the change, or losing the answer.
ACTION_FAULTS: dict[str, tuple[Family, Family]] = {
    "credit": (Family.CREDIT_BEFORE, Family.CREDIT_AFTER),
    "inventory/reserve": (Family.RESERVE_BEFORE, Family.RESERVE_AFTER),
    "pupils/assign": (Family.ASSIGN_BEFORE, Family.ASSIGN_AFTER),
    "classes/enrol": (Family.ENROL_BEFORE, Family.ENROL_AFTER),
}
BEFORE = frozenset(before for before, _ in ACTION_FAULTS.values())
AFTER = frozenset(after for _, after in ACTION_FAULTS.values())

TRANSFER_FAMILIES: tuple[Family, ...] = (
    Family.CREDIT_BEFORE,
    Family.CREDIT_AFTER,
    Family.DELAY,
    Family.DUPLICATE,
    Family.KILL_ORCHESTRATOR,
    Family.KILL_ACCOUNTS,
)
ORDER_FAMILIES: tuple[Family, ...] = (
    *TRANSFER_FAMILIES,
    Family.RESERVE_BEFORE,
    Family.RESERVE_AFTER,
)
CLASSES_FAMILIES: tuple[Family, ...] = (
    Family.ASSIGN_BEFORE,
    Family.ASSIGN_AFTER,
    Family.ENROL_BEFORE,
    Family.ENROL_AFTER,
    Family.DELAY,
    Family.DUPLICATE,
    Family.KILL_ORCHESTRATOR,
    Family.KILL_ACCOUNTS,
)
SAGA_FAMILIES: dict[str, tuple[Family, ...]] = {
    "transfer": TRANSFER_FAMILIES,
    "order": ORDER_FAMILIES,
    "classes": CLASSES_FAMILIES,
}


def parse_families(text: str, saga: str = "transfer") -> tuple[Family, ...]:
    """`credit-before,delay` -> families in canonical order; ValueError on an unknown name or
    on a family that cannot reach `saga`."""
    names = {part.strip() for part in text.split(",") if part.strip()}
    if not names:
        raise ValueError("no fault family given")
    unknown = names - {f.value for f in Family}
    if unknown:
        raise ValueError(
            f"unknown fault famil{'y' if len(unknown) == 1 else 'ies'}: "
            f"{', '.join(sorted(unknown))}"
        )
    families = SAGA_FAMILIES[saga]
    foreign = names - {f.value for f in families}
    if foreign:
        raise ValueError(f"not a {saga} family: {', '.join(sorted(foreign))}")
    return tuple(f for f in families if f.value in names)


@dataclass(frozen=True, slots=True)
class ProxyFault:
    family: Family | None  # None: deliver normally
    delay: float = 0.0  # seconds the proxy holds a DELAY delivery before forwarding it


NO_FAULT = ProxyFault(None)


@dataclass(frozen=True, slots=True)
class Rates:
    """Probability of each proxy fault per delivery (the before/after families apply to their
    one operation only, `ACTION_FAULTS`)."""

    credit_before: float = 0.12
    credit_after: float = 0.12
    reserve_before: float = 0.12
    reserve_after: float = 0.12
    # Fewer on assign, more on enrol: a group meets assign first, and each refused or undone one
    # never reaches enrol, the pivot whose settlement is the point of the run.
    assign_before: float = 0.1
    assign_after: float = 0.1
    enrol_before: float = 0.2
    enrol_after: float = 0.2
    delay: float = 0.06
    duplicate: float = 0.08
    delay_range: tuple[float, float] = (0.4, 2.5)  # beyond the attempt timeout, often the retries
    orchestrator_kills_per_1000: int = 6
    accounts_kills_per_1000: int = 3


def _unit(*parts: object) -> tuple[float, float]:
    """Two independent uniform draws in [0, 1) from a hash of the parts."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    scale = float(1 << 64)
    return int.from_bytes(digest[:8], "big") / scale, int.from_bytes(digest[8:16], "big") / scale


@dataclass(frozen=True)
class Schedule:
    seed: int
    families: tuple[Family, ...]
    rates: Rates = field(default_factory=Rates)

    def proxy_fault(self, transaction_id: str, operation: str, delivery: int) -> ProxyFault:
        """The fate of the `delivery`-th request (1-based) of `operation` for `transaction_id`."""
        u, v = _unit(self.seed, transaction_id, operation, delivery)
        r = self.rates
        action_rates = {
            Family.CREDIT_BEFORE: r.credit_before,
            Family.CREDIT_AFTER: r.credit_after,
            Family.RESERVE_BEFORE: r.reserve_before,
            Family.RESERVE_AFTER: r.reserve_after,
            Family.ASSIGN_BEFORE: r.assign_before,
            Family.ASSIGN_AFTER: r.assign_after,
            Family.ENROL_BEFORE: r.enrol_before,
            Family.ENROL_AFTER: r.enrol_after,
        }
        candidates = [(family, action_rates[family]) for family in ACTION_FAULTS.get(operation, ())]
        candidates += [(Family.DELAY, r.delay), (Family.DUPLICATE, r.duplicate)]
        edge = 0.0
        for family, rate in candidates:
            if family not in self.families:
                continue
            edge += rate
            if u < edge:
                low, high = r.delay_range
                delay = low + v * (high - low) if family is Family.DELAY else 0.0
                return ProxyFault(family, delay)
        return NO_FAULT

    def kill_points(self, family: Family, sagas: int) -> tuple[int, ...]:
        """Answered-saga counts at which to SIGKILL (at least one when the family is on)."""
        if family not in self.families or sagas < 2:
            return ()
        per_1000 = {
            Family.KILL_ORCHESTRATOR: self.rates.orchestrator_kills_per_1000,
            Family.KILL_ACCOUNTS: self.rates.accounts_kills_per_1000,
        }.get(family, 0)
        wanted = max(1, sagas * per_1000 // 1000)
        rng = random.Random(f"{self.seed}:{family.value}")
        return tuple(sorted(rng.sample(range(1, sagas), min(wanted, sagas - 1))))
