"""The participants of the built-in sagas that a `sagabank serve` process hosts beside (or
instead of) the account service: the order saga's inventory and orders services, and the classes
saga's pupils and classes services.

- Roles `all` and `accounts` host all four, under `/inventory`, `/orders`, `/pupils`, `/classes`
  (`service_map.HOSTED_PARTICIPANTS`), each on its own database (`Settings.participant_database`:
  by default a SQLite file beside the account store's). An orchestrator finds them there by
  default: the account service's URL + that path (`Settings.resolved_services`), so a default
  `sagabank serve`, and an orchestrator pointed at an account service, run the order saga with
  no more settings.
- Roles `inventory`, `orders`, `pupils` and `classes` host that one alone, at `/`, so that
  each participant can run as its own process (`sagabank serve --role inventory`; the
  orchestrator then names it in `SAGABANK_SERVICES`). So do roles `abc-a`, `abc-b` and `abc-c`,
  the A → B → C example's services (`services/abc.py`, only ever alone: each keeps its table in
  the process's own database, and its switch (`PUT /switch`) and journal (`GET /calls`) in
  memory).
Their operations take `SAGABANK_SERVICE_TOKEN` when it is set (the kit's bearer check), as the
account service's do; their reads (`reads`, a router of its own) go behind the app's `Reader`
(the read or admin token, as every read of the account service), on every role that hosts them.
`SAGABANK_PARTICIPANT_FAULTS` fails the operations it names on purpose (`participant_kit.faults`;
an operation the service lacks refuses the start). Their stores open at start-up (the app's
lifespan), not when the app is built, and close with it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from fastapi import APIRouter
from pydantic import SecretStr

from repository_after.choreography.stores import schema as choreography_schema
from repository_after.config import ConfigurationError, SagaMode, Settings
from repository_after.domain.classes import CLASSES, PUPILS
from repository_after.domain.order import INVENTORY, ORDERS
from repository_after.participant_kit import ParticipantService, ParticipantStore
from repository_after.participant_kit.http import EdgeHooks
from repository_after.service_map import HOSTED_PARTICIPANTS
from repository_after.services import (
    abc,
    abc_http,
    classes,
    classes_http,
    inventory,
    inventory_http,
    orders,
    orders_http,
    pupils,
    pupils_http,
)
from repository_after.services.hosting import DeferredStore, holds_records, open_store
from repository_after.services.switched import Journal, SwitchedService


def _abc_service(name: str, store: ParticipantStore) -> ParticipantService:
    return abc.abc_service(name, store, Journal())


def _switched(service: ParticipantService) -> SwitchedService:
    assert isinstance(service, SwitchedService)  # built by `_abc_service`
    return service


def _abc_routes(
    service: ParticipantService, token: SecretStr | None, _hooks: EdgeHooks | None
) -> APIRouter:
    return abc_http.abc_routes(_switched(service), token)


def _abc_reads(service: ParticipantService) -> APIRouter:
    return abc_http.abc_reads(_switched(service))


_BUILT: dict[
    str,
    tuple[
        tuple[str, ...],
        Callable[[ParticipantStore], ParticipantService],
        Callable[[ParticipantService, SecretStr | None, EdgeHooks | None], APIRouter],
        Callable[[ParticipantService], APIRouter],
    ],
] = {
    INVENTORY: (
        inventory.SCHEMA,
        inventory.inventory_service,
        inventory_http.inventory_routes,
        inventory_http.inventory_reads,
    ),
    ORDERS: (
        orders.SCHEMA,
        orders.orders_service,
        orders_http.orders_routes,
        orders_http.orders_reads,
    ),
    PUPILS: (
        pupils.SCHEMA,
        pupils.pupils_service,
        pupils_http.pupils_routes,
        pupils_http.pupils_reads,
    ),
    CLASSES: (
        classes.SCHEMA,
        classes.classes_service,
        classes_http.classes_routes,
        classes_http.classes_reads,
    ),
    **{
        f"abc-{name.lower()}": (
            abc.SCHEMA,
            partial(_abc_service, name),
            _abc_routes,
            _abc_reads,
        )
        for name in abc.SERVICES
    },
}


@dataclass(frozen=True)
class Hosted:
    """One hosted participant: its routes go under `prefix` ("" for a process of its own);
    `router` holds its operations (service token), `reads` its reads (the host's `Reader`)."""

    name: str
    prefix: str
    store: DeferredStore
    router: APIRouter
    reads: APIRouter
    #: its operations (what a choreographed process's reactor decides with)
    service: ParticipantService | None = None


def hosted_participants(settings: Settings, hooks: EdgeHooks | None = None) -> list[Hosted]:
    """The participants this process serves (none for roles `orchestrator`); `hooks`: what
    the host observes of their batches (its tracer, its replay counter)."""
    if settings.role.hosts_participants:
        placed = dict(HOSTED_PARTICIPANTS)
    elif settings.role.serves_one_participant:
        placed = {settings.role.value: ""}
    else:
        return []
    hosted = []
    for name, prefix in placed.items():
        schema, build, routes, reads = _BUILT[name]
        database = settings.participant_database(name)
        if settings.mode is SagaMode.CHOREOGRAPHY:  # its inbox, outbox and turns beside it
            dialect = "postgres" if str(database).startswith("postgres") else "sqlite"
            schema = (*schema, *choreography_schema(dialect))
        store = DeferredStore(partial(open_store, database, schema=schema, name=name))
        service = build(store)
        if (faults := settings.participant_faults.get(name)) is not None:
            try:
                service.inject_faults(faults)
            except ValueError as exc:
                raise ConfigurationError(f"SAGABANK_PARTICIPANT_FAULTS: {exc}") from None
        hosted.append(
            Hosted(
                name,
                prefix,
                store,
                routes(service, settings.service_token, hooks),
                reads(service),
                service,
            )
        )
    return hosted


async def open_hosted(hosted: list[Hosted]) -> None:
    for one in hosted:
        await asyncio.to_thread(one.store.open)


async def close_hosted(hosted: list[Hosted]) -> None:
    for one in hosted:
        await one.store.close()


def existing_participant(settings: Settings, name: str) -> ParticipantService | None:
    """The participant `name` over its database as these settings place it (the database its
    process opens, hosted or alone), opened now; None if no such database holds its records yet
    (`hosting.holds_records`), so that a tool like `sagabank gc` never creates one."""
    database = settings.participant_database(name)
    if not holds_records(database):
        return None
    schema, build, _, _ = _BUILT[name]
    return build(open_store(database, schema=schema, name=name))
