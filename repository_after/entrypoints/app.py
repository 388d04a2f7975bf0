"""`create_app(settings)`: the FastAPI application for the configured role.

Components are built in the lifespan (not at import), so importing `server` is cheap and tests can
build as many apps as they like. With an orchestrator, startup launches the worker loop in the
background once every service the registered sagas call answers `/health` (`readiness`; in role
`all` the account service is this very process, which only starts listening after the
lifespan's startup returns): crash recovery first, then
lease renewal and claims of unowned or expired sagas every `claim_interval` seconds.

`/docs` is FastAPI's Swagger UI with its JavaScript, CSS and icon served by this process from the
`swagger-ui-bundle` package (FastAPI's "self-hosting JavaScript and CSS for docs" recipe), so it
works offline and the page loads nothing from another origin. The assets are one APIRoute over a
fixed set of names (as the dashboard's), not a StaticFiles mount: the app holds only FastAPI routes.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]  # no py.typed

from repository_after.bootstrap import Container, bootstrap, check_services, services_needed
from repository_after.config import ProcessRole, SagaMode, Settings
from repository_after.domain.saga_definition import SagaDefinition
from repository_after.entrypoints import (
    accounts_api,
    admin_api,
    dashboard,
    metrics_api,
    sagas_api,
    transfers_api,
)
from repository_after.entrypoints.account_edge import AccountEdge, account_router, edge_hooks
from repository_after.entrypoints.choreography_host import start_choreography
from repository_after.entrypoints.deps import Reader
from repository_after.entrypoints.errors import BadRequest, install_error_handlers
from repository_after.entrypoints.limits import RequestLimits
from repository_after.entrypoints.participants import close_hosted, hosted_participants, open_hosted
from repository_after.entrypoints.readiness import Readiness, wait_for_services
from repository_after.entrypoints.schemas import ERROR_RESPONSES
from repository_after.observability.telemetry import Telemetry
from repository_after.service_layer.orchestrator import Orchestrator
from repository_after.services.hosting import MAX_BODY_BYTES as PARTICIPANT_MAX_BODY

logger = logging.getLogger(__name__)

#: The Swagger UI files `/docs` needs, served at `/docs/static/{name}`; nothing else is reachable.
_DOCS_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-32x32.png": "image/png",
}
_DOCS_STATIC = "/docs/static"
_SWAGGER_UI = Path(str(swagger_ui_path))  # the package's folder of Swagger UI files


async def _work_when_ready(
    orchestrator: Orchestrator, readiness: Readiness, claim_interval: float
) -> None:
    """Wait for every service the registered sagas call, then run the worker loop (its first
    claim is recovery)."""
    await wait_for_services(readiness)
    await orchestrator.work(interval=claim_interval)


def create_app(
    settings: Settings,
    *,
    telemetry: Telemetry | None = None,
    definitions: Mapping[str, SagaDefinition] | None = None,
) -> FastAPI:
    """`telemetry` (metrics, traces, live events) is built from the settings unless given;
    `definitions`: the saga types this process runs (by default the settings', the built-in
    ones and `SAGABANK_EXTRA_SAGAS`). With an orchestrator, a step whose service
    has no URL is refused here, before anything is built or logged (`ConfigurationError`)."""
    runs: Mapping[str, SagaDefinition] = (
        settings.saga_definitions() if definitions is None else definitions
    )
    has_orchestrator = settings.role.runs_sagas
    if has_orchestrator:
        check_services(settings, runs)
    telemetry = telemetry or Telemetry(settings)
    hosted = hosted_participants(settings, edge_hooks(telemetry))
    edge = AccountEdge()  # the account service's operations, bound to its store at start-up

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await open_hosted(hosted)
        try:
            container: Container = await bootstrap(
                settings, observers=telemetry.observers, definitions=runs
            )
        except BaseException:
            await close_hosted(hosted)
            raise
        app.state.container = container
        telemetry.bind(container)
        if container.account_store is not None:
            edge.bind(container.account_store, container.faults)
        recovery: asyncio.Task[None] | None = None
        app.state.readiness = None
        choreographed = None
        if (
            settings.mode is SagaMode.CHOREOGRAPHY
        ):  # relays, consumers, tracker: docs/choreography.md
            try:
                choreographed = await start_choreography(settings, container, hosted)
            except BaseException:
                await container.close()
                await close_hosted(hosted)
                raise
            telemetry.metrics.messaging = choreographed.figures
        elif container.orchestrator is not None:
            readiness = Readiness(services_needed(settings, runs))
            app.state.readiness = readiness
            recovery = asyncio.create_task(
                _work_when_ready(container.orchestrator, readiness, settings.claim_interval)
            )
        app.state.recovery = recovery
        try:
            yield
        finally:
            if recovery is not None:
                recovery.cancel()
                await asyncio.gather(recovery, return_exceptions=True)
            if choreographed is not None:
                await choreographed.stop()
            edge.unbind()
            await container.close()
            await close_hosted(hosted)
            telemetry.close()

    app = FastAPI(
        title="sagabank",
        version="0.1.0",
        summary="Idempotent account service and crash-safe transfer sagas.",
        lifespan=lifespan,
        responses=ERROR_RESPONSES,
        # Our own middleware traces and measures every request (`observability`); FastAPI's
        # native telemetry would add a second server span under a global tracer provider, and
        # even switched off by default it checks for one on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        docs_url=None,  # served below from local assets instead of a CDN
        redoc_url=None,  # ReDoc's bundle is not shipped; Swagger UI is the one viewer
    )
    _install_docs(app)
    install_error_handlers(app)
    app.add_middleware(
        RequestLimits,
        trusted_hosts=settings.resolved_trusted_hosts(),
        # the hosted participants take whole orders: a batch of 128 orders of 50 lines
        larger_bodies={one.prefix or "/": PARTICIPANT_MAX_BODY for one in hosted},
    )
    app.state.telemetry = telemetry
    app.state.event_streams = Counter()  # open `/ui/events` streams per client (deps)
    telemetry.install(app)  # outermost: sees every answer, also the limits' refusals
    app.include_router(metrics_api.router)
    if settings.role in (ProcessRole.ALL, ProcessRole.ACCOUNTS):
        app.include_router(account_router(edge, settings, telemetry))
        app.include_router(accounts_api.router)
        app.include_router(admin_api.router)
    if settings.role in (ProcessRole.ALL, ProcessRole.ORCHESTRATOR):
        app.include_router(transfers_api.router)
        app.include_router(sagas_api.router)
        app.include_router(dashboard.router)
    for one in hosted:
        app.include_router(one.router, prefix=one.prefix)
        # Every read of a hosted participant, as every read of the account service.
        app.include_router(one.reads, prefix=one.prefix, dependencies=[Reader])

    if not settings.role.serves_one_participant:  # theirs is the kit's

        @app.get("/health", tags=["meta"])
        async def health() -> dict[str, str]:
            return {"status": "ok", "role": settings.role.value}

    @app.get("/", tags=["meta"])
    async def index(request: Request) -> Response:
        has_ui = settings.role in (ProcessRole.ALL, ProcessRole.ORCHESTRATOR)
        if has_ui and "text/html" in request.headers.get("accept", ""):
            return RedirectResponse("/ui")  # a browser gets the dashboard
        links = {"docs": "/docs", "metrics": "/metrics", **({"dashboard": "/ui"} if has_ui else {})}
        return JSONResponse({"service": "sagabank", "role": settings.role.value, **links})

    return app


def _install_docs(app: FastAPI) -> None:
    """`/docs`, its OAuth2 redirect page and its assets, all same-origin."""
    redirect_url = app.swagger_ui_oauth2_redirect_url or "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - Swagger UI",
            oauth2_redirect_url=redirect_url,
            swagger_js_url=f"{_DOCS_STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{_DOCS_STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{_DOCS_STATIC}/favicon-32x32.png",
        )

    @app.get(redirect_url, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(f"{_DOCS_STATIC}/{{name}}", include_in_schema=False)
    async def swagger_ui_asset(name: str) -> FileResponse:
        media_type = _DOCS_ASSETS.get(name)
        if media_type is None:
            raise BadRequest("not_found", "no such asset", 404)
        return FileResponse(_SWAGGER_UI / name, media_type=media_type)
