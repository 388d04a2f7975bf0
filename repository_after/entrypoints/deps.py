"""The dependency providers of the routes: the one place the API reads `app.state`.

Routes declare what they need with the `Annotated` aliases below (`OrchestratorDep`,
`TransferDeskDep`, `AccountStoreDep`, `FaultsDep`, `SettingsDep`, `TelemetryDep`) and FastAPI
solves them per request; a test or a second app can swap a provider with
`app.dependency_overrides`. Nothing else in the API reads `app.state`: a collaborator a route
needs is a parameter of the route, visible in its signature.
The container exists from the lifespan's start-up on (`app.state.container`), the telemetry from
`create_app` on (`app.state.telemetry`). Every provider is `async def` on purpose: FastAPI runs a
plain `def` dependency in a worker thread, a thread hop per request for a dictionary lookup.

Bearer tokens and their guards, none opening another's routes (each compares in constant
time, and an unset token leaves its routes open: the embedded loopback default, curl-able):
- `Admin` guards the routes that change the service (opening accounts, faults, operator
  actions): with `admin_token` set they need `Authorization: Bearer <admin token>`.
- The service token (`service_token`) guards the five money-moving routes (`/debit`,
  `/credit`, `/compensate_debit`, `/void_credit`, `/batch`), which only the orchestrator
  calls. They are the participant kit's router (`entrypoints.account_edge`), whose guard
  refuses a call without it (401 `unauthorized`) before the body is read: nothing recorded.
- `Reader` guards the reads (accounts, entries, transfers, audit, metrics, faults, the
  dashboard's data and live events): with `admin_token` or `read_token` set they need either
  one (the read token opens no write). `/health`, `/ui` and its static assets stay open: health
  checks and the page that asks for the token. Only `/ui/events` also takes the token as the
  query parameter `token`: a browser's EventSource cannot send headers (a cookie would need a
  login route and CSRF care of its own; the access log records paths without query strings).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Query, Request
from pydantic import SecretStr

from repository_after.bootstrap import Container
from repository_after.config import Settings
from repository_after.domain.ids import TRANSACTION_ID_PATTERN
from repository_after.entrypoints.errors import BadRequest
from repository_after.observability.telemetry import Telemetry
from repository_after.participant_kit.http import bearer_matches
from repository_after.service_layer.faults import FaultInjector
from repository_after.service_layer.orchestrator import Orchestrator
from repository_after.service_layer.ports import AccountStore
from repository_after.service_layer.saga_types import SagaTypes


def _container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


# Each provider reads the container itself rather than depending on a container provider:
# FastAPI solves every nested dependency with a recursive call of its own, per request, and on
# `/debit` that nesting was a measurable share of the route's CPU.


async def get_settings(request: Request) -> Settings:
    return _container(request).settings


async def get_faults(request: Request) -> FaultInjector:
    return _container(request).faults


async def get_account_store(request: Request) -> AccountStore:
    store = _container(request).account_store
    # Only the account service's routers ask, and only roles that build a store mount them.
    assert store is not None
    return store


async def get_orchestrator(request: Request) -> Orchestrator:
    orchestrator = _container(request).orchestrator
    # Only the orchestrator's routers ask, and only roles that build one mount them.
    assert orchestrator is not None
    return orchestrator


@dataclass(frozen=True, slots=True)
class TransferDesk:
    """What `POST /transfers` needs (`transfers.run_transfer`), as ONE dependency for the same
    reason: FastAPI spends ~70 Python calls per dependency per request, and this is the
    orchestrator's hot path (one request per transfer)."""

    orchestrator: Orchestrator
    wait: float  # `Settings.transfer_wait`


async def get_transfer_desk(request: Request) -> TransferDesk:
    container = _container(request)
    assert container.orchestrator is not None  # as in `get_orchestrator`
    return TransferDesk(container.orchestrator, container.settings.transfer_wait)


@dataclass(frozen=True, slots=True)
class SagaDesk:
    """What the generic saga routes need: the orchestrator, the saga types it runs, the wait."""

    orchestrator: Orchestrator
    types: SagaTypes
    wait: float  # `Settings.transfer_wait`


async def get_saga_desk(request: Request) -> SagaDesk:
    container = _container(request)
    assert container.orchestrator is not None  # as in `get_orchestrator`
    assert container.saga_types is not None  # built with the orchestrator
    return SagaDesk(container.orchestrator, container.saga_types, container.settings.transfer_wait)


async def get_optional_orchestrator(request: Request) -> Orchestrator | None:
    return _container(request).orchestrator


async def get_event_streams(request: Request) -> Counter[str]:
    """Open `/ui/events` streams per peer address, one count per app (one event loop: no lock)."""
    streams: Counter[str] = request.app.state.event_streams
    return streams


async def get_telemetry(request: Request) -> Telemetry:
    telemetry: Telemetry = request.app.state.telemetry
    return telemetry


SettingsDep = Annotated[Settings, Depends(get_settings)]
FaultsDep = Annotated[FaultInjector, Depends(get_faults)]
AccountStoreDep = Annotated[AccountStore, Depends(get_account_store)]
OrchestratorDep = Annotated[Orchestrator, Depends(get_orchestrator)]
TransferDeskDep = Annotated[TransferDesk, Depends(get_transfer_desk)]
SagaDeskDep = Annotated[SagaDesk, Depends(get_saga_desk)]
OptionalOrchestratorDep = Annotated[Orchestrator | None, Depends(get_optional_orchestrator)]
TelemetryDep = Annotated[Telemetry, Depends(get_telemetry)]
EventStreamsDep = Annotated[Counter[str], Depends(get_event_streams)]


def _check_bearer(token: SecretStr | None, authorization: str | None, which: str) -> None:
    """Pass when no token is configured or `authorization` is exactly `Bearer <token>`."""
    if token is not None and not bearer_matches(token, authorization):
        raise BadRequest("unauthorized", f"this endpoint requires the {which} bearer token", 401)


async def require_admin(
    settings: SettingsDep, authorization: Annotated[str | None, Header()] = None
) -> None:
    _check_bearer(settings.admin_token, authorization, "admin")


def _check_reader(settings: Settings, given: str) -> None:
    tokens = [t for t in (settings.admin_token, settings.read_token) if t is not None]
    if not tokens:
        return
    # Every token is compared (no short cut), each in constant time.
    matches = [bearer_matches(t, given) for t in tokens]
    if not any(matches):
        raise BadRequest(
            "unauthorized", "this endpoint requires the read or admin bearer token", 401
        )


async def require_reader(
    settings: SettingsDep, authorization: Annotated[str | None, Header()] = None
) -> None:
    _check_reader(settings, authorization or "")


async def require_stream_reader(
    settings: SettingsDep,
    authorization: Annotated[str | None, Header()] = None,
    token: Annotated[str | None, Query(include_in_schema=False)] = None,
) -> None:
    """`require_reader`, or the token as `?token=` (EventSource sends no headers)."""
    _check_reader(settings, authorization or (f"Bearer {token}" if token else ""))


_TX_HEADER = Header(
    alias="transaction-id",
    pattern=TRANSACTION_ID_PATTERN.pattern,
    description="idempotency key: 1-128 of letters, digits, '.', '_', ':', '-'",
)
OptionalTransactionId = Annotated[str | None, _TX_HEADER]
Admin = Depends(require_admin)
Reader = Depends(require_reader)
StreamReader = Depends(require_stream_reader)
