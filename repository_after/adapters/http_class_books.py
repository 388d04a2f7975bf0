"""Reads the classes saga's books over HTTP, as `service_layer.class_audit.ClassBooks` takes them:
every pupil and every class (with its roster) the two services hold, and their audits.

`read_class_books(services, sagas=…)` reads the pupils service's `GET /pupils` and the classes
service's `GET /classes` page after page (`limit`, `after` the last id of the page before) until
a page comes back short, then each one's `GET /audit`. A page must hold only ids after the
cursor: a service that ignores `after` would hand back the same page forever, and
`IncompleteBooks` is raised then rather than an audit of the first page only. Any non-2xx answer
raises `httpx.HTTPStatusError`: a book that cannot be read is not a clean book.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from repository_after.adapters.http_order_books import IncompleteBooks
from repository_after.service_layer.class_audit import ClassBooks

PUPIL_PAGE = 1000
CLASS_PAGE = 100


@dataclass(frozen=True)
class ClassServices:
    """Clients of the two services, each with its base URL and whatever credential it reads
    with."""

    pupils: httpx.AsyncClient
    classes: httpx.AsyncClient


async def _json(client: httpx.AsyncClient, path: str, **params: Any) -> Any:
    reply = await client.get(path, params=params or None)
    return reply.raise_for_status().json()


async def read_pages(
    client: httpx.AsyncClient, path: str, *, field: str, id_field: str, limit: int
) -> list[Any]:
    """Every row of the paged listing at `path` (its rows under `field`, ordered by
    `id_field`)."""
    listed: list[Any] = []
    after: str | None = None
    while True:
        params: dict[str, Any] = {"limit": limit} | ({"after": after} if after else {})
        page: list[Any] = (await _json(client, path, **params))[field]
        if after is not None and any(str(row[id_field]) <= after for row in page):
            raise IncompleteBooks(f"{path} does not page by `after`: an older release?")
        listed += page
        if len(page) < limit:
            return listed
        after = str(page[-1][id_field])


async def read_class_books(services: ClassServices, *, sagas: Mapping[str, str]) -> ClassBooks:
    """Both services' books; `sagas` is saga id -> status (for the settled-saga rule)."""
    pupils = await read_pages(
        services.pupils, "/pupils", field="pupils", id_field="pupil_id", limit=PUPIL_PAGE
    )
    classes = await read_pages(
        services.classes, "/classes", field="classes", id_field="class_id", limit=CLASS_PAGE
    )
    return ClassBooks(
        pupils=pupils,
        pupils_audit=await _json(services.pupils, "/audit"),
        classes=classes,
        classes_audit=await _json(services.classes, "/audit"),
        sagas=dict(sagas),
    )
