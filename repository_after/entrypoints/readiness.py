"""Readiness: the orchestrator starts working (recovery, then claims) only once every service
its registered sagas call answers `GET {url}/health` with a 2xx.

The wait has no deadline: giving up would leave this worker without recovery or takeover. While
it waits, `Readiness.waiting` names the services that have not answered yet, and each round
logs them by name and URL (URLs carry no credentials: `service_map.check_service_url`). A service
that answered once is not asked again. The probe carries no token: `/health` is open, and a
service's credential goes only with that service's calls.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

import httpx

logger = logging.getLogger(__name__)

#: Seconds between rounds: doubling from the first, at most the last.
FIRST_BACKOFF = 0.1
MAX_BACKOFF = 5.0
#: Each probe's deadline.
PROBE_TIMEOUT = 2.0


class Readiness:
    """The services a process waits for (name -> URL), and which of them have not answered."""

    def __init__(self, services: Mapping[str, str]) -> None:
        self.services = dict(services)
        self.waiting = set(self.services)

    @property
    def ready(self) -> bool:
        return not self.waiting


async def _healthy(client: httpx.AsyncClient, url: str) -> bool:
    try:
        answer = await client.get(f"{url}/health")
    except httpx.HTTPError:
        return False
    return answer.is_success


async def wait_for_services(
    readiness: Readiness,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    max_backoff: float = MAX_BACKOFF,
) -> None:
    """Return once every service of `readiness` has answered its health check."""
    async with httpx.AsyncClient(
        timeout=PROBE_TIMEOUT, transport=transport, trust_env=False, follow_redirects=False
    ) as client:
        backoff = FIRST_BACKOFF
        attempt = 0
        while True:
            attempt += 1
            names = sorted(readiness.waiting)
            answers = await asyncio.gather(
                *(_healthy(client, readiness.services[name]) for name in names)
            )
            readiness.waiting -= {name for name, ok in zip(names, answers, strict=True) if ok}
            if readiness.ready:
                return
            logger.info(
                "waiting for %s (attempt %d)",
                ", ".join(
                    f"service {name!r} at {readiness.services[name]}"
                    for name in sorted(readiness.waiting)
                ),
                attempt,
            )
            await asyncio.sleep(min(backoff, max_backoff))
            backoff *= 2
