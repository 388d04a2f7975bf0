"""Prometheus metrics of one app instance, in its own `CollectorRegistry` (never the global one).

Saga metrics are fed by `SagaMetrics.observe`, an observer of `SagaTransition` events, so they
count what this process drove (recovery included). Gauges that describe the whole saga log
(sagas by status, parked sagas, age of the oldest unsettled saga) are read from the log at scrape
time (`refresh`), so they are right after a restart too. Every saga series carries the saga type
as its `saga` label; summed over it, a series means what it meant before types had one.
`sagabank_parked_sagas` has a series, 0 or more, for every type this server runs
(`saga_types`), so an alert on it never waits for a first parked saga. Injected faults are read
from the fault injector at scrape time. Names and labels are listed in docs/operations.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from repository_after.domain.saga import TERMINAL, EventKind, Outcome, SagaStatus, StepRole
from repository_after.service_layer.faults import FaultInjector
from repository_after.service_layer.orchestrator import SagaTransition
from repository_after.service_layer.saga_ports import SagaLog

PARKED = SagaStatus.FAILED_NEEDS_ATTENTION.value
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
#: In-flight steps remembered for their duration; a driver cancelled mid-step leaves one entry.
_MAX_OPEN_STEPS = 10_000


class Labelled:
    """A metric's children by label values, cached. `labels()` validates, converts and takes a
    lock on every call, which cost several % of the orchestrator's CPU per transfer; label
    values here come from small fixed sets (routes, statuses, saga and operation names), so
    the cache stays small."""

    def __init__(self, metric: Any) -> None:
        self._metric = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._metric.labels(*values)
        return child


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


@dataclass(frozen=True)
class MessagingFigures:
    """Choreography's messaging at scrape time: each outbox's (unpublished, failing) rows by its
    store's name, and the messages in the dead-letter queue (None: not counted here)."""

    outbox: dict[str, tuple[int, int]]
    dead_letters: int | None
    #: the tracker's own dead copies its scan sent back to its queue (None: no tracker here)
    tracker_redrives: int | None = None
    #: stale dead letters the tracker's scan acknowledged away (None: no tracker here)
    dead_letters_discarded: int | None = None


@dataclass
class LogSnapshot:
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # type -> status -> sagas
    ages: dict[str, dict[str, float]] = field(default_factory=dict)  # type -> kind -> seconds


class _ScrapeTimeCollector(Collector):
    """Yields the values read at scrape time: the saga log snapshot and the fault counts."""

    def __init__(self, metrics: SagaMetrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        snap = self._m.snapshot
        if snap is not None:
            sagas = sorted({*self._m.saga_types, *snap.counts, *snap.ages})
            by_status = GaugeMetricFamily(
                "sagabank_sagas",
                "Sagas in the saga log by type and status.",
                labels=["saga", "status"],
            )
            for saga, counts in sorted(snap.counts.items()):
                for status, count in sorted(counts.items()):
                    by_status.add_metric([saga, status], count)
            yield by_status
            parked = GaugeMetricFamily(
                "sagabank_parked_sagas",
                "Sagas parked in failed_needs_attention, waiting for an operator, by type.",
                labels=["saga"],
            )
            for saga in sagas:
                parked.add_metric([saga], snap.counts.get(saga, {}).get(PARKED, 0))
            yield parked
            age = GaugeMetricFamily(
                "sagabank_oldest_unsettled_saga_age_seconds",
                "Age of the oldest non-terminal saga of a type (0 if none), in flight or parked.",
                labels=["saga", "kind"],
            )
            for saga in sagas:
                for kind in ("in_flight", "parked"):
                    age.add_metric([saga, kind], snap.ages.get(saga, {}).get(kind, 0.0))
            yield age
        yield from self._messaging()
        faults = self._m.faults
        if faults is not None:
            injected = CounterMetricFamily(
                "sagabank_injected_faults",
                "Faults injected on /credit since start, by point.",
                labels=["point"],
            )
            injected.add_metric(["before"], faults.counts.before)
            injected.add_metric(["after"], faults.counts.after)
            yield injected

    def _messaging(self) -> Iterator[Metric]:
        found = self._m.messaging_figures
        if found is None:
            return
        unpublished = GaugeMetricFamily(
            "sagabank_outbox_backlog",
            "Outbox rows not yet published, by store (choreography).",
            labels=["store"],
        )
        failing = GaugeMetricFamily(
            "sagabank_outbox_failing",
            "Unpublished outbox rows whose last publication failed, by store (choreography).",
            labels=["store"],
        )
        for store, (count, failed) in sorted(found.outbox.items()):
            unpublished.add_metric([store], count)
            failing.add_metric([store], failed)
        yield unpublished
        yield failing
        if found.dead_letters is not None:
            yield GaugeMetricFamily(
                "sagabank_dead_letters",
                "Messages left in the dead-letter queue after the tracker's last scan "
                "(choreography).",
                value=found.dead_letters,
            )
        if found.tracker_redrives is not None:
            yield CounterMetricFamily(
                "sagabank_tracker_redrives",
                "The tracker's own copies dead-lettered by process deaths and sent back to its "
                "queue by its scan, since the process started (choreography).",
                value=found.tracker_redrives,
            )
        if found.dead_letters_discarded is not None:
            yield CounterMetricFamily(
                "sagabank_dead_letters_discarded",
                "Stale dead letters (of a turn their saga went past, or of a terminal saga) the "
                "tracker's scan acknowledged away, since the process started (choreography).",
                value=found.dead_letters_discarded,
            )


class SagaMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.snapshot: LogSnapshot | None = None
        self.saga_types: tuple[str, ...] = ()  # the types this server runs (`Telemetry.bind`)
        self.faults: FaultInjector | None = None
        #: choreography's figures, read at scrape time (`refresh_messaging`); None otherwise
        self.messaging: Callable[[], Awaitable[MessagingFigures]] | None = None
        self.messaging_figures: MessagingFigures | None = None
        self._open_steps: dict[str, float] = {}
        r = self.registry
        self.started = Counter(
            "sagabank_sagas_started", "Sagas whose first step began here.", ["saga"], registry=r
        )
        self.outcomes = Counter(
            "sagabank_saga_outcomes",
            "Sagas reaching a terminal or parked status (transfers by outcome).",
            ["saga", "outcome"],
            registry=r,
        )
        self.attempt_seconds = Histogram(
            "sagabank_step_attempt_duration_seconds",
            "Duration of one attempt of a remote operation.",
            ["saga", "operation", "outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.step_seconds = Histogram(
            "sagabank_step_duration_seconds",
            "Duration of one operation of a step, all retries included, by final outcome.",
            ["saga", "operation", "outcome"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.retries = Counter(
            "sagabank_step_retries",
            "Attempts after the first one.",
            ["saga", "operation"],
            registry=r,
        )
        self.compensations = Counter(
            "sagabank_compensations",
            "Compensations finished, by outcome (exhausted: still unknown after retries).",
            ["saga", "operation", "outcome"],
            registry=r,
        )
        self.settlements = Counter(
            "sagabank_settlements",
            "Settlements (void_credit for transfers) finished, by the participant's answer.",
            ["saga", "operation", "result"],
            registry=r,
        )
        r.register(_ScrapeTimeCollector(self))
        self._started = Labelled(self.started)
        self._outcomes = Labelled(self.outcomes)
        self._attempt_seconds = Labelled(self.attempt_seconds)
        self._step_seconds = Labelled(self.step_seconds)
        self._retries = Labelled(self.retries)
        self._compensations = Labelled(self.compensations)
        self._settlements = Labelled(self.settlements)

    def observe(self, t: SagaTransition) -> None:
        e = t.event
        saga = t.definition
        if e.kind is EventKind.OPERATION_STARTED:
            if t.before == SagaStatus.STARTED:
                self._started(saga).inc()
            self._open_steps[t.saga_id] = _ts(e.at)
            while len(self._open_steps) > _MAX_OPEN_STEPS:
                self._open_steps.pop(next(iter(self._open_steps)))
        elif e.kind is EventKind.ATTEMPT and e.outcome is not None:
            operation = e.operation or ""
            if e.started_at:
                self._attempt_seconds(saga, operation, e.outcome.value).observe(
                    max(0.0, _ts(e.at) - _ts(e.started_at))
                )
            if (e.attempt or 1) > 1:
                self._retries(saga, operation).inc()
            if e.outcome is not Outcome.UNKNOWN:
                self._finish_step(t, e.outcome.value, e.result or e.error or e.outcome.value)
        elif e.kind is EventKind.RETRIES_EXHAUSTED:
            self._finish_step(t, "exhausted", "exhausted")
        if t.after != t.before and (t.after in TERMINAL or t.after == PARKED):
            self._outcomes(saga, t.after).inc()

    def _finish_step(self, t: SagaTransition, outcome: str, result: str) -> None:
        e = t.event
        operation = e.operation or ""
        began = self._open_steps.pop(t.saga_id, None)
        if began is not None:
            self._step_seconds(t.definition, operation, outcome).observe(
                max(0.0, _ts(e.at) - began)
            )
        if e.role is StepRole.COMPENSATION:
            self._compensations(t.definition, operation, outcome).inc()
        elif e.role is StepRole.SETTLEMENT:
            self._settlements(t.definition, operation, result).inc()

    async def refresh(self, log: SagaLog) -> None:
        """Read the whole-log gauges: two grouped queries, whatever the log holds."""
        now = datetime.now(UTC).timestamp()
        counts = await log.count_by_definition()
        oldest = await log.oldest_unsettled()
        ages = {
            saga: {kind: max(0.0, now - _ts(at)) for kind, at in by_kind.items()}
            for saga, by_kind in oldest.items()
        }
        self.snapshot = LogSnapshot(counts=counts, ages=ages)

    async def refresh_messaging(self) -> None:
        if self.messaging is not None:
            self.messaging_figures = await self.messaging()

    def render(self) -> bytes:
        return generate_latest(self.registry)
