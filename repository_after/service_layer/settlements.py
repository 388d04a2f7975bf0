"""How each unknown outcome of a set of sagas was settled, counted from their saga events.

A 500 or a timeout is an UNKNOWN outcome, never "did not happen". The saga log records how every
one of them ended, and this module only reads those events (pure, no I/O), so a summary can show
that lost answers were settled correctly:
- `retried_to_success`: an action answered unknown, then succeeded on a retry with the same key;
- `settled_already_applied`: retries ran out and the settlement (`void_credit`) answered that the
  action had landed (the saga went on and completed);
- `settled_voided`: the settlement fenced the action out (it never will land; then compensated);
- `compensated_after_unknown`: retries ran out on an action with no settlement (the debit) and
  it was compensated as possibly applied (the tombstone makes that safe).
Counting is per step of a saga, so a saga counts at most once in each row per step.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

from repository_after.domain.saga import EventKind, Outcome, SagaEvent, StepRole


@dataclass
class Settlements:
    retried_to_success: int = 0
    settled_already_applied: int = 0
    settled_voided: int = 0
    compensated_after_unknown: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def add(self, events: Iterable[SagaEvent]) -> None:
        """Count one saga's events (in log order) into these totals."""
        unknown: set[str] = set()  # steps whose action answered unknown at least once
        exhausted: set[str] = set()  # steps whose action stayed unknown after every retry
        settled: set[str] = set()  # steps a settlement answered for
        for e in events:
            step = e.step or ""
            if e.kind is EventKind.RETRIES_EXHAUSTED and e.role is StepRole.ACTION:
                exhausted.add(step)
            if e.kind is not EventKind.ATTEMPT:
                continue
            if e.role is StepRole.ACTION:
                if e.outcome is Outcome.UNKNOWN:
                    unknown.add(step)
                elif e.outcome is Outcome.SUCCEEDED and step in unknown:
                    self.retried_to_success += 1
                    unknown.discard(step)
            elif e.role is StepRole.SETTLEMENT and e.outcome is Outcome.SUCCEEDED:
                settled.add(step)
                if e.result == "already_applied":
                    self.settled_already_applied += 1
                elif e.result == "voided":
                    self.settled_voided += 1
            elif (
                e.role is StepRole.COMPENSATION
                and e.outcome is Outcome.SUCCEEDED
                and step in exhausted - settled
            ):
                # An exhausted step with no settlement is compensated as possibly applied;
                # counted once its compensation actually succeeded.
                self.compensated_after_unknown += 1
                exhausted.discard(step)


def count_settlements(sagas: Iterable[Iterable[SagaEvent]]) -> Settlements:
    """The totals over several sagas, each given as its events in log order."""
    totals = Settlements()
    for events in sagas:
        totals.add(events)
    return totals
