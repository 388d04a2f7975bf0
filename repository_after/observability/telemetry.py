"""`Telemetry`: everything observable about one app instance, built once per `create_app`.

It owns the Prometheus registry, the tracer provider (or none), the live-event hub and the
recent-log buffer; gives the orchestrator its observers; installs the HTTP middleware; and is
bound to the container once the lifespan has built it (for the saga log and fault counts).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry.sdk.trace.export import SpanExporter

from repository_after.config import Settings
from repository_after.observability.events import TransitionHub
from repository_after.observability.metrics import SagaMetrics
from repository_after.observability.middleware import HttpMetrics, ObservabilityMiddleware
from repository_after.observability.recent_logs import RecentLogs
from repository_after.observability.tracing import SagaTracer, build_tracer_provider
from repository_after.service_layer.orchestrator import Observer

if TYPE_CHECKING:
    from fastapi import FastAPI

    from repository_after.bootstrap import Container


class Telemetry:
    def __init__(self, settings: Settings, *, span_exporter: SpanExporter | None = None) -> None:
        self.settings = settings
        self.metrics = SagaMetrics()
        self.http_metrics = HttpMetrics(self.metrics.registry)
        self.tracer_provider = build_tracer_provider(settings, exporter=span_exporter)
        self.tracer = (
            None
            if self.tracer_provider is None
            else self.tracer_provider.get_tracer("repository_after")
        )
        self.saga_tracer = None if self.tracer is None else SagaTracer(self.tracer)
        self.hub = TransitionHub()
        self.recent_logs = RecentLogs()
        self.container: Container | None = None

    @property
    def observers(self) -> tuple[Observer, ...]:
        observers: list[Observer] = [self.metrics.observe, self.hub.observe]
        if self.saga_tracer is not None:
            observers.append(self.saga_tracer.observe)
        return tuple(observers)

    def install(self, app: FastAPI) -> None:
        app.add_middleware(ObservabilityMiddleware, metrics=self.http_metrics, tracer=self.tracer)

    def bind(self, container: Container) -> None:
        self.container = container
        self.metrics.faults = container.faults if container.account_store is not None else None
        types = container.saga_types
        self.metrics.saga_types = () if types is None else tuple(sorted(types.definitions()))
        self.recent_logs.attach()

    def close(self) -> None:
        self.recent_logs.detach()
        if self.tracer_provider is not None:
            self.tracer_provider.shutdown()
