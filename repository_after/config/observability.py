"""What a process tells the operator: its logs and its traces.

A group of its own because logging and tracing are set up once per process
(`entrypoints/logs.py`, `observability/tracing.py`) whatever its role or saga mode.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel


class OtelExporter(StrEnum):
    NONE = "none"
    CONSOLE = "console"
    OTLP = "otlp"


class ObservabilitySettings(BaseModel):
    log_json: bool = False
    log_level: str = "INFO"

    # Traces (docs/operations.md): off by default; OTLP over HTTP to the collector's endpoint.
    otel_exporter: OtelExporter = OtelExporter.NONE
    otel_endpoint: str = "http://127.0.0.1:4318/v1/traces"
