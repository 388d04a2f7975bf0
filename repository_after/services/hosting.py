"""What every participant service built on the kit shares: its app around the kit's router, and
the standalone shell (the product's request limits, a lifespan that closes the store).

A participant app (`participant_app`) has the kit's routes and error shapes and nothing else, so
a `sagabank serve` process can mount it under a path (`/inventory`, `/orders`) behind its own
limits and lifespan; `standalone` makes it a service of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import orjson
from fastapi import FastAPI, Response
from pydantic import SecretStr

from repository_after.entrypoints.limits import RequestLimits
from repository_after.participant_kit import (
    ParticipantService,
    ParticipantStore,
    install_error_handlers,
    participant_router,
)

#: A batch of 128 orders of 50 lines fits; the product's 64 KiB is sized for account calls.
MAX_BODY_BYTES = 1024 * 1024
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def json_answer(status_code: int, body: object) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


def participant_app(title: str, service: ParticipantService, token: SecretStr | None) -> FastAPI:
    """A FastAPI app serving `service`'s operations (`participant_router`, guarded by `token`)
    with the product's error shapes; the service adds its own routes to it."""
    app = FastAPI(title=title)
    install_error_handlers(app)
    app.state.participant = service
    app.include_router(participant_router(service, token=token))
    return app


def standalone(
    app: FastAPI, store: ParticipantStore, trusted_hosts: Iterable[str] = LOOPBACK_HOSTS
) -> FastAPI:
    """`app` as a service of its own: the product's request limits before any route (header and
    body sizes, one `transaction-id`, `Host` among `trusted_hosts`, no cross-site writes), and
    `store` closed when the app's lifespan ends."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await store.close()

    app.router.lifespan_context = lifespan
    app.add_middleware(
        RequestLimits, max_body_bytes=MAX_BODY_BYTES, trusted_hosts=tuple(trusted_hosts)
    )
    return app
