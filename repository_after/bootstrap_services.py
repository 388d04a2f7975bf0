"""Part of the composition root (`bootstrap`): the services an orchestrator calls, checked
before it starts, and its HTTP client of them.

A module of its own because it is the orchestrator's side alone (a choreographed deployment and
an account-service-only process never build it), and the one place that decides where each
service's URL and token come from (`Settings.resolved_services`, `service_map`); `bootstrap`
re-exports it.
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from repository_after.adapters.http_participant import Endpoint, HttpParticipant
from repository_after.config import ConfigurationError, Settings
from repository_after.domain.saga_definition import SagaDefinition
from repository_after.service_layer.saga_types import unserved_steps
from repository_after.service_map import services_without_token


def check_services(settings: Settings, definitions: Mapping[str, SagaDefinition]) -> None:
    """Refuse to start (`ConfigurationError`) when a step of a registered saga calls a service
    that has no URL: found now, not as a KeyError in the driver after its saga was logged; and
    when, with a service token set, a service listed with its own URL does not say its token
    (`service_map.services_without_token`): it gets none, so its calls would be refused (401)
    mid-saga, after money moved; fail closed at start-up instead, naming it, never a token."""
    tokenless = services_without_token(settings.services, service_token=settings.service_token)
    if tokenless:
        raise ConfigurationError(
            f"SAGABANK_SERVICES: {', '.join(repr(name) for name in tokenless)} "
            f"{'has' if len(tokenless) == 1 else 'have'} no token, and SAGABANK_SERVICE_TOKEN "
            "(the account service's credential) goes to no service listed with its own URL: "
            'give each its own "token", or "token": null for one that takes none'
        )
    unserved = unserved_steps(definitions.values(), settings.resolved_services())
    if unserved:
        raise ConfigurationError(f"{unserved[0]}: set it in SAGABANK_SERVICES")


def services_needed(
    settings: Settings, definitions: Mapping[str, SagaDefinition]
) -> dict[str, str]:
    """name -> URL of every service some registered saga calls (what readiness waits for)."""
    services = settings.resolved_services()
    names = sorted(set().union(*(d.services for d in definitions.values())))
    return {name: services[name].url for name in names if name in services}


def build_participant(
    settings: Settings,
    definitions: Mapping[str, SagaDefinition],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> HttpParticipant:
    """The orchestrator's client of every configured service (`Settings.resolved_services`),
    after `check_services`. Each service gets its own URL, its own batching, and its own token
    (`Authorization: Bearer <token>`) sent to it alone; a service without a token gets no
    `Authorization` at all. `transport`: tests' (the production one otherwise)."""
    check_services(settings, definitions)
    endpoints = {
        name: Endpoint(
            url=service.url,
            batching=service.batching,
            headers=(
                {"authorization": f"Bearer {service.token.get_secret_value()}"}
                if service.token
                else {}
            ),
        )
        for name, service in settings.resolved_services().items()
    }
    return HttpParticipant(
        endpoints,
        batching=settings.participant_max_in_flight > 0,
        max_in_flight=max(1, settings.participant_max_in_flight),
        transport=transport,
    )
