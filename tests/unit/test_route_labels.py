"""The HTTP metrics' `route` label is the matched route's template with the prefix of the router
it was included under: a hosted participant's `/inventory/batch` is not the account service's
`/batch` (FastAPI keeps an included router as one node whose routes lack the prefix)."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, FastAPI
from prometheus_client import CollectorRegistry

from repository_after.observability.middleware import HttpMetrics, ObservabilityMiddleware


def _app(metrics: HttpMetrics) -> FastAPI:
    inventory = APIRouter()

    @inventory.post("/batch")
    async def inventory_batch() -> dict[str, str]:
        return {}

    @inventory.get("/items/{sku}")
    async def item(sku: str) -> dict[str, str]:
        return {"sku": sku}

    app = FastAPI()

    @app.post("/batch")
    async def batch() -> dict[str, str]:
        return {}

    @app.get("/accounts/{account_id}")
    async def account(account_id: str) -> dict[str, str]:
        return {"account_id": account_id}

    app.include_router(inventory, prefix="/inventory")
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)
    return app


async def test_each_route_is_labelled_with_its_routers_prefix() -> None:
    registry = CollectorRegistry()
    metrics = HttpMetrics(registry)
    transport = httpx.ASGITransport(app=_app(metrics))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        for _ in range(2):
            assert (await client.post("/inventory/batch")).status_code == 200
        assert (await client.post("/batch")).status_code == 200
        assert (await client.get("/inventory/items/apple")).status_code == 200
        assert (await client.get("/accounts/acc-01")).status_code == 200
        assert (await client.get("/nowhere")).status_code == 404

    def count(route: str, method: str, status: str = "200") -> float | None:
        labels = {"method": method, "route": route, "status": status}
        return registry.get_sample_value("sagabank_http_requests_total", labels)

    assert count("/inventory/batch", "POST") == 2
    assert count("/batch", "POST") == 1
    assert count("/inventory/items/{sku}", "GET") == 1
    assert count("/accounts/{account_id}", "GET") == 1
    assert count("unmatched", "GET", "404") == 1
