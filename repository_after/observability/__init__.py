"""Operator surface: Prometheus metrics, OpenTelemetry traces, transaction-scoped logs, live events.

Everything here is per application instance (no global registry or tracer provider), so tests can
build many apps in one process. The saga-side signals come from observers of `SagaTransition`
events; the orchestrator itself knows nothing about metrics or traces.
"""
