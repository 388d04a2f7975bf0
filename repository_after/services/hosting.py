"""What every participant service built on the kit shares: its router around the kit's
operations, its store, and the standalone shell (the product's error shapes and request limits,
a read guard, a lifespan that closes the store).

A participant's routes are two plain routers: its operations (`participant_routes`, guarded by
the service token) and its reads (no guard of their own). A `sagabank serve` process includes
both under a prefix (`/inventory`, `/orders`, or `/` for a process of its own) behind its own
limits and lifespan, the reads behind its read guard (`entrypoints.deps.Reader`), over a store it
opens at start-up (`DeferredStore`); `standalone` makes them a service of its own, the reads
behind `read_guard`. Either way no read is served without the host's read credential, when one
is set, and a read added to a reads router is guarded without being told."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Protocol, TypeVar

import orjson
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from pydantic import SecretStr

from repository_after.domain.ids import ACCOUNT_ID_PATTERN
from repository_after.entrypoints.limits import RequestLimits
from repository_after.participant_kit import (
    ParticipantService,
    ParticipantStore,
    SqliteParticipantStore,
    Tx,
    bearer_guard,
    install_error_handlers,
    participant_reads,
    participant_router,
)
from repository_after.participant_kit.http import EdgeHooks
from repository_after.service_layer.ports import StorageError

T = TypeVar("T")

#: A batch of 128 orders of 50 lines fits; the product's 64 KiB is sized for account calls.
MAX_BODY_BYTES = 1024 * 1024
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
#: A participant's entity id in a read's path, and a page's `after` cursor: checked before any
#: query (a NUL byte would reach PostgreSQL and fail there: 503 instead of 422).
IdPath = Annotated[str, PathParam(pattern=ACCOUNT_ID_PATTERN.pattern, max_length=64)]
AfterCursor = Annotated[str | None, Query(pattern=ACCOUNT_ID_PATTERN.pattern, max_length=64)]
MYSQL_SCHEMES = ("mysql://", "mariadb://")


def open_store(database: Path | str, *, schema: Sequence[str], name: str) -> ParticipantStore:
    """A participant's store: a SQLite file (a path; `:memory:` for tests), a PostgreSQL
    database (a `postgresql://` URL) or a MariaDB / MySQL one (`mysql://`, `mariadb://`)."""
    if isinstance(database, str) and database.startswith(("postgres://", "postgresql://")):
        from repository_after.participant_kit.postgres import PostgresParticipantStore

        return PostgresParticipantStore(database, schema=schema, name=name)
    if isinstance(database, str) and database.startswith(MYSQL_SCHEMES):
        from repository_after.participant_kit.mysql import MysqlParticipantStore

        return MysqlParticipantStore(database, schema=schema, name=name)
    return SqliteParticipantStore(Path(database), schema=schema)


def holds_records(database: Path | str) -> bool:
    """Whether `database` (as `open_store` takes it) already holds a participant's records: a
    SQLite file that exists, a PostgreSQL or MariaDB database with the kit's table; never
    `:memory:`."""
    if isinstance(database, str) and database.startswith(("postgres://", "postgresql://")):
        from repository_after.participant_kit.postgres import holds_records as pg_holds_records

        return pg_holds_records(database)
    if isinstance(database, str) and database.startswith(MYSQL_SCHEMES):
        from repository_after.participant_kit.mysql import holds_records as my_holds_records

        return my_holds_records(database)
    return str(database) != ":memory:" and Path(database).is_file()


class DeferredStore:
    """A store opened later (`open`, at a host process's start-up, not when its app is built)
    and closed with it; until then (and after `close`) every call is a `StorageError`, which
    the kit answers 503 `storage_unavailable`: an unknown outcome, never recorded."""

    def __init__(self, opener: Callable[[], ParticipantStore]) -> None:
        self._opener = opener
        self._store: ParticipantStore | None = None

    def open(self) -> None:
        if self._store is None:
            self._store = self._opener()

    def _open_store(self) -> ParticipantStore:
        if self._store is None:
            raise StorageError("the store is not open")
        return self._store

    @property
    def identity(self) -> object | None:
        """The open store's database (`choreography.runtime`: one outbox, one relay), if it
        names one (PostgreSQL)."""
        return getattr(self._store, "identity", None)

    async def transaction(self, fn: Callable[[Tx], T]) -> T:
        return await self._open_store().transaction(fn)

    async def read(self, fn: Callable[[Tx], T]) -> T:
        return await self._open_store().read(fn)

    async def close(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            await store.close()


def json_answer(status_code: int, body: object) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


def found_or_404(found: object | None, *, error: str, message: str) -> Response:
    """A read's answer: `found` (200), or 404 `{"error", "message"}` when there is none."""
    if found is None:
        return json_answer(404, {"error": error, "message": message})
    return json_answer(200, found)


class _Audit(Protocol):
    def as_dict(self) -> dict[str, Any]: ...


def add_audit_route(
    router: APIRouter, service: ParticipantService, audit: Callable[[Tx], _Audit]
) -> None:
    """`GET /audit` on a participant's reads router: what `audit` finds in its store."""

    @router.get("/audit", response_class=Response)
    async def get_audit() -> Response:
        return json_answer(200, (await service.store.read(audit)).as_dict())


def secret(token: str | None) -> SecretStr | None:
    return SecretStr(token) if token is not None else None


def read_guard(token: SecretStr | None) -> Callable[[Request], Awaitable[None]]:
    """A standalone participant's read guard, a dependency of its reads router: with `token`
    set, `Authorization: Bearer <token>` (the kit's constant-time check) or 401 `unauthorized`
    before the route runs; unset, the reads are open."""
    check = bearer_guard(token)

    async def require_read_token(request: Request) -> None:
        if check(request) is not None:
            raise HTTPException(401, "this endpoint requires the read token")

    return require_read_token


def participant_reads_router(service: ParticipantService) -> APIRouter:
    """A reads router for `service`, holding the kit's reads (`GET /faults`) to begin with; the
    service adds its own reads to it. Its host includes it behind its read guard."""
    router = APIRouter(tags=[service.name])
    router.include_router(participant_reads(service))
    return router


def participant_routes(
    service: ParticipantService, token: SecretStr | None, hooks: EdgeHooks | None = None
) -> APIRouter:
    """A router of `service`'s operations (`participant_router`, guarded by `token`, its
    batches observed by the host's `hooks`); the service adds its own writes to it, never a read
    (those go on its reads router). A `sagabank serve` process includes it under a prefix
    (`/inventory`), a standalone service (`standalone`) at `/`."""
    router = APIRouter(tags=[service.name])
    router.include_router(participant_router(service, token=token, hooks=hooks))
    return router


def standalone(
    title: str,
    router: APIRouter,
    reads: APIRouter,
    store: ParticipantStore,
    *,
    read_token: SecretStr | None,
    trusted_hosts: Iterable[str] = LOOPBACK_HOSTS,
) -> FastAPI:
    """`router` and `reads` (behind `read_guard(read_token)`) as a service of its own: the
    product's error shapes, its request limits before any route (header and body sizes, one
    `transaction-id`, `Host` among `trusted_hosts`, no cross-site writes), and `store` closed
    when the app's lifespan ends."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await store.close()

    app = FastAPI(title=title, lifespan=lifespan)
    install_error_handlers(app)
    app.include_router(router)
    app.include_router(reads, dependencies=[Depends(read_guard(read_token))])
    app.add_middleware(
        RequestLimits, max_body_bytes=MAX_BODY_BYTES, trusted_hosts=tuple(trusted_hosts)
    )
    return app
