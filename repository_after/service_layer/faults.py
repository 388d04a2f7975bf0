"""Seeded fault injection, to show compensation and settlement at work: the account service's
`/credit` (`SAGABANK_CREDIT_FAILURE_*`) and the operations a participant built on the kit names
(`participant_kit.faults`), one `FaultInjector` per operation.

Modes: `before` fails the request before anything changes; `after` commits the credit and then
answers 500 (the lost response: the dangerous case); `mixed` picks one of the two per fault.
Draws come from one `random.Random(seed)`, so a run with the same seed and request order replays.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass
from enum import StrEnum

logger = logging.getLogger(__name__)


class FaultMode(StrEnum):
    BEFORE = "before"
    AFTER = "after"
    MIXED = "mixed"


class FaultPoint(StrEnum):
    NONE = "none"
    BEFORE = "before"
    AFTER = "after"


@dataclass
class FaultCounts:
    before: int = 0
    after: int = 0


class FaultInjector:
    def __init__(
        self, *, rate: float, mode: FaultMode, seed: int | None, operation: str = "credit"
    ) -> None:
        self.operation = operation  # what the log lines name
        self._lock = threading.Lock()
        self.counts = FaultCounts()
        self.configure(rate=rate, mode=mode, seed=seed)

    def configure(self, *, rate: float, mode: FaultMode, seed: int | None) -> None:
        """Replace the settings and restart the generator (counts keep running)."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError("fault rate must be within [0, 1]")
        with self._lock:
            self.rate, self.mode, self.seed = rate, mode, seed
            self._rng = random.Random(seed)

    def draw(self, transaction_id: str) -> FaultPoint:
        """Decide the fate of one request of the operation."""
        with self._lock:
            if self.rate == 0.0 or self._rng.random() >= self.rate:
                return FaultPoint.NONE
            point = self._point()
            if point is FaultPoint.BEFORE:
                self.counts.before += 1
            else:
                self.counts.after += 1
        # INFO, not WARNING: an injected fault is the configured behaviour (and counted in
        # /metrics); at 30 % of credits, a warning each cost the service ~6 % of its CPU.
        logger.info(
            "injected fault %s on %s",
            point.value,
            self.operation,
            extra={"transaction_id": transaction_id},
        )
        return point

    def _point(self) -> FaultPoint:
        if self.mode is FaultMode.BEFORE:
            return FaultPoint.BEFORE
        if self.mode is FaultMode.AFTER:
            return FaultPoint.AFTER
        return FaultPoint.BEFORE if self._rng.random() < 0.5 else FaultPoint.AFTER
