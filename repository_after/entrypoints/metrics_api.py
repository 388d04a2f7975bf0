"""`GET /metrics`: Prometheus text exposition of this app instance's registry.

The saga-log gauges are refreshed from the log on each scrape (see observability.metrics).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST

from repository_after.entrypoints.deps import OptionalOrchestratorDep, Reader, TelemetryDep

router = APIRouter(tags=["meta"], dependencies=[Reader])


@router.get("/metrics", response_class=Response)
async def metrics(telemetry: TelemetryDep, orchestrator: OptionalOrchestratorDep) -> Response:
    if orchestrator is not None:
        await telemetry.metrics.refresh(orchestrator.log)
    await telemetry.metrics.refresh_messaging()
    return Response(telemetry.metrics.render(), media_type=CONTENT_TYPE_LATEST)
