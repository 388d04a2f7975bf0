"""OpenTelemetry traces: one span per saga, one per step operation, joined across services.

`build_tracer_provider` makes a provider per app instance (the global one is never set, so tests
can build many apps), exporting to the console or OTLP/HTTP as `SAGABANK_OTEL_EXPORTER` says, or
to an exporter handed in by a test. With `none` (the default) no provider exists and no span is
made.

`SagaTracer` is an observer of `SagaTransition` events, so the orchestrator stays unaware of
tracing. The saga span starts at the first transition this process sees for a saga (a child of
whatever span is current: the `POST /transfers` server span) and ends when the saga settles.
A step span starts at `operation_started` and is *attached* as the current context of the saga's
driver task until the operation's decisive event; the HTTP participant injects that context as
`traceparent` (for a batched call, into its batch item), so the account service's server spans
become its children and one trace shows the whole transfer. Attempts are span events with their
outcome and status code. The saga span and every step span carry the saga type
(`sagabank.saga`), so a trace backend can select one type's sagas or steps. Both transitions of
a pair happen in the same driver task (the shell always logs a fresh intent before a call),
which is what makes attach/detach safe.
"""

from __future__ import annotations

from contextvars import Token
from datetime import datetime

from opentelemetry import context, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SimpleSpanProcessor,
    SpanExporter,
)
from opentelemetry.trace import Span, Status, StatusCode

from repository_after.config import OtelExporter, Settings
from repository_after.domain.saga import AT_REST, EventKind, Outcome
from repository_after.service_layer.orchestrator import SagaTransition

_MAX_OPEN_SAGAS = 10_000


def build_tracer_provider(
    settings: Settings, *, exporter: SpanExporter | None = None
) -> TracerProvider | None:
    """None when tracing is off; `exporter` (tests) wins over the settings."""
    if exporter is None and settings.otel_exporter is OtelExporter.NONE:
        return None
    resource = Resource.create({"service.name": f"sagabank-{settings.role.value}"})
    provider = TracerProvider(resource=resource)
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif settings.otel_exporter is OtelExporter.CONSOLE:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    else:
        # Imported here: the OTLP exporter pulls in protobuf, paid only when asked for.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otel_endpoint))
        )
    return provider


def _ns(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1_000_000_000)


class SagaTracer:
    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer
        self._sagas: dict[str, Span] = {}
        self._steps: dict[str, tuple[Span, Token[Context]]] = {}

    def observe(self, t: SagaTransition) -> None:
        e = t.event
        saga = self._sagas.get(t.saga_id)
        if saga is None:
            saga = self._tracer.start_span(
                f"saga {t.definition}",
                start_time=_ns(e.at),
                attributes={"sagabank.transaction_id": t.saga_id, "sagabank.saga": t.definition},
            )
            self._sagas[t.saga_id] = saga
            while len(self._sagas) > _MAX_OPEN_SAGAS:
                self._sagas.pop(next(iter(self._sagas))).end()
        if e.kind is EventKind.OPERATION_STARTED:
            self._end_step(t.saga_id)
            step = self._tracer.start_span(
                f"{t.definition} {e.step} {e.operation}",
                context=trace.set_span_in_context(saga),
                start_time=_ns(e.at),
                attributes={
                    "sagabank.transaction_id": t.saga_id,
                    "sagabank.saga": t.definition,
                    "sagabank.step": e.step or "",
                    "sagabank.operation": e.operation or "",
                    "sagabank.role": e.role.value if e.role else "",
                },
            )
            token = context.attach(trace.set_span_in_context(step))
            self._steps[t.saga_id] = (step, token)
        elif e.kind is EventKind.ATTEMPT and e.outcome is not None:
            entry = self._steps.get(t.saga_id)
            if entry is not None:
                attributes: dict[str, str | int] = {
                    "attempt": e.attempt or 0,
                    "outcome": e.outcome.value,
                }
                if e.status_code is not None:
                    attributes["http.response.status_code"] = e.status_code
                if e.error:
                    attributes["error"] = e.error
                entry[0].add_event("attempt", attributes, timestamp=_ns(e.at))
            if e.outcome is not Outcome.UNKNOWN:
                self._end_step(t.saga_id, outcome=e.outcome.value, at=e.at)
        elif e.kind is EventKind.RETRIES_EXHAUSTED:
            self._end_step(t.saga_id, outcome="exhausted", at=e.at, error=True)
        elif e.kind in (EventKind.OPERATOR_RETRY, EventKind.OPERATOR_RESOLVE):
            saga.add_event(e.kind.value, {"note": e.note or ""}, timestamp=_ns(e.at))
        if t.after in AT_REST:
            self._end_step(t.saga_id, at=e.at)
            saga.set_attribute("sagabank.status", t.after)
            if t.after == "failed_needs_attention":
                saga.set_status(Status(StatusCode.ERROR, "parked for an operator"))
            saga.end(end_time=_ns(e.at))
            del self._sagas[t.saga_id]

    def _end_step(
        self,
        saga_id: str,
        *,
        outcome: str | None = None,
        at: str | None = None,
        error: bool = False,
    ) -> None:
        entry = self._steps.pop(saga_id, None)
        if entry is None:
            return
        step, token = entry
        if outcome is not None:
            step.set_attribute("sagabank.outcome", outcome)
        if error:
            step.set_status(Status(StatusCode.ERROR, f"outcome {outcome}"))
        step.end(end_time=None if at is None else _ns(at))
        context.detach(token)
