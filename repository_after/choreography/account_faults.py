"""The account service's configured faults (`SAGABANK_CREDIT_FAILURE_*`) in choreography.

In orchestration the account service's HTTP edge draws `/credit`'s fault per request
(`service_layer.account_operations`) from the process's `FaultInjector`. In choreography the
account service is a consumer: `AccountFaults.draw(tx, operation, key)` is asked by
`accounts_decide` before anything is decided, as a kit service's `faults.draw` is by
`kit_decide`, and a drawn fault fails the DELIVERY (the transaction rolls back, the message is
handed back and comes again). Any drawn point counts as `before`: an `after` fault (the answer
lost after the commit) has no meaning inside one transaction. The same injector serves both
modes, so `GET /faults` counts these too, and `POST /faults` reconfigures them.

Why a cap. Redelivery is choreography's retry, and the queue's delivery limit
(`SAGABANK_BROKER_DELIVERY_LIMIT`, L, default 5: L + 1 deliveries) its last attempt. Drawn
afresh at every delivery, a rate r parks a credit's saga with probability r^(L+1): at the
default 30 % and L = 5 that is 0.073 % of credits, about one saga in 1,400, so a demo with 200
credits would park a saga about one run in eight, one with 1,000 credits about one run in two,
and a test with L = 1 one credit in eleven. These faults are a demonstration device that is ON
by default (30 %); parking is the operator's business, for a message no retry can help (a
poison message, a service that is down: the kit's faults at rate 1,
`tests/e2e/test_choreography_operator.py`).
So a key is faulted at most `in_a_row` deliveries in a row, and the wiring makes that ONE
(`min(1, L)`): an injected fault costs a credit one redelivery (the consumer's 0.5 s requeue
delay), never more, and never its last delivery. Why not up to L (the last delivery let
through, the rest drawn)? Because the limit counts every failed delivery, not only injected
ones: a crash or a cut connection hands a delivery back too (the quorum queue counts it), so
faults allowed up to L leave nothing for those, and the streak is this process's count, lost
at a restart. The first full choreographed order chaos run (1,000 orders, seed 1) met exactly
that with a cap of L = 3: a credit faulted twice, the process SIGKILLed, faulted twice more by
the new process: dead-lettered, and during a broker restart timed out by the tracker. One
fault per key leaves L of the L + 1 deliveries for real failures. The streak is this process's
memory, and each process replays the seed's draws, so after a restart the first credit it met
was faulted again, by every generation (the chaos campaign parked 1 to 3 sagas a run that way,
seeds 3 and 4): so the broker's delivery count decides too (`delivery`, which a restart does
not reset): only a credit's first `in_a_row` deliveries may be faulted, whatever process meets
them. A key's streak is forgotten at its first unfaulted delivery, so the map holds
only keys in the middle of a streak.

One draw per delivery. The account node's transaction may RUN more than once for one delivery:
its store's group commit runs a batch again, each job in a savepoint, when any job of it raised
(`adapters.sqlite_db`), so a faulted job always runs twice. Drawn at each run, a fault would
stand only if drawn twice (r^2: 9 % at 30 %) and the streak would count runs, not deliveries.
`SharedSqliteStore.transaction` hands every run of one call the SAME `Tx`, and the draw made
for a (tx, key) is kept for that tx (weakly: gone with the delivery), so each delivery draws
once. (The kit services' `kit_decide` still draws per run: their faults are off by default.)
"""

from __future__ import annotations

import threading
from typing import Protocol
from weakref import WeakKeyDictionary

from repository_after.participant_kit.storage import Tx
from repository_after.service_layer.faults import FaultInjector, FaultPoint


class FaultDraw(Protocol):
    """What the account node asks before deciding a call; `tx` is the delivery's, `delivery`
    the message's earlier deliveries (the broker's count)."""

    def draw(self, tx: Tx, operation: str, key: str, delivery: int = 0) -> FaultPoint: ...


class AccountFaults:
    """`injector`'s draws for `operation` (the account service's `credit`), once per delivery,
    at most `in_a_row` faulted deliveries in a row per key (see the module docstring)."""

    def __init__(
        self, injector: FaultInjector, *, in_a_row: int, operation: str = "credit"
    ) -> None:
        self.injector = injector
        self.in_a_row = in_a_row
        self.operation = operation
        self._streaks: dict[str, int] = {}
        self._drawn: WeakKeyDictionary[Tx, dict[str, FaultPoint]] = WeakKeyDictionary()
        self._lock = threading.Lock()

    def draw(self, tx: Tx, operation: str, key: str, delivery: int = 0) -> FaultPoint:
        if operation != self.operation or delivery >= self.in_a_row:
            # Only a credit's first `in_a_row` deliveries may be faulted, by the broker's count:
            # a restarted process, whose streaks start empty and whose draws replay the seed,
            # cannot fault a redelivered credit again.
            return FaultPoint.NONE
        with self._lock:
            try:
                drawn = self._drawn.setdefault(tx, {})
            except TypeError:  # a `Tx` that cannot be weakly referenced: a draw per run
                return self._fresh(key)
            if key not in drawn:  # this delivery's first run
                drawn[key] = self._fresh(key)
            return drawn[key]

    def _fresh(self, key: str) -> FaultPoint:
        streak = self._streaks.pop(key, 0)
        if streak >= self.in_a_row:
            return FaultPoint.NONE  # this key had its share: let it through
        point = self.injector.draw(key)
        if point is not FaultPoint.NONE:
            self._streaks[key] = streak + 1
        return point
