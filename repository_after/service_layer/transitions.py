"""Saga transitions as observers see them, and applying events with observers notified.

Every event the shell applies to a saga's state (an intent, an attempt, a give-up, an operator
action) is passed to each observer as one `SagaTransition`; the default observer logs it with
the transaction id. The start itself is not a transition. Observers run synchronously on the
event loop, in the driver's hot path: they must not block (the metrics and trace observers only
count and record).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import NamedTuple

from repository_after.domain.saga import SagaDefinition, SagaEvent, SagaState, apply

#: One logger for the whole orchestrator (driver, worker, operator actions): operators, the
#: dashboard and the tests follow this name, which predates the split into modules.
LOGGER_NAME = "repository_after.service_layer.orchestrator"
logger = logging.getLogger(LOGGER_NAME)


class SagaTransition(NamedTuple):
    """One applied event, as observers see it (a named tuple: several are built per saga)."""

    saga_id: str
    definition: str
    event: SagaEvent
    before: str
    after: str


Observer = Callable[[SagaTransition], None]


def log_transition(t: SagaTransition) -> None:
    if not logger.isEnabledFor(logging.INFO):
        return  # several transitions per transfer: not even the message is built
    e = t.event
    what = e.kind.value if e.step is None else f"{e.kind.value} {e.step}/{e.operation}"
    if e.outcome is not None:
        what += f" -> {e.outcome.value} ({e.status_code or e.error or ''})"
    logger.info(
        "saga %s %s: %s [%s -> %s]",
        t.definition,
        t.saga_id,
        what,
        t.before,
        t.after,
        extra={"transaction_id": t.saga_id},
    )


def notify(
    observers: Sequence[Observer],
    saga_id: str,
    definition: str,
    event: SagaEvent,
    before: str,
    after: str,
) -> None:
    """Pass one transition of saga `saga_id` (of the definition named `definition`) to each
    observer."""
    if observers:  # none in the bench and many tests: not even the tuple is built
        transition = SagaTransition(saga_id, definition, event, before, after)
        for observer in observers:
            observer(transition)


def apply_observed(
    observers: Sequence[Observer],
    saga_id: str,
    definition: SagaDefinition,
    state: SagaState,
    events: Sequence[SagaEvent],
) -> SagaState:
    """Fold `events` into `state`, notifying the observers of each transition."""
    for event in events:
        before = state.status
        state = apply(definition, state, event)
        notify(observers, saga_id, definition.name, event, before, state.status)
    return state
