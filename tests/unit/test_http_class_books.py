"""`read_class_books` reads every page of both services' listings (a full page is followed by
the next, `after` its last id), each service's audit, and refuses to audit the first page only
when a service ignores `after` (`IncompleteBooks`). httpx's MockTransport stands in for the two
services."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from repository_after.adapters import http_class_books
from repository_after.adapters.http_class_books import ClassServices, read_class_books
from repository_after.adapters.http_order_books import IncompleteBooks

PUPILS = [{"pupil_id": f"p{i:03d}", "class_id": None, "assigned_key": None} for i in range(7)]
CLASSES = [{"class_id": f"c{i}", "capacity": 3, "roster": []} for i in range(5)]
AUDIT = {"ok": True, "violations": []}


def service(rows: list[dict[str, Any]], field: str, id_field: str, *, pages: bool = True) -> Any:
    asked: list[dict[str, str]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/audit":
            return httpx.Response(200, json=AUDIT)
        params = dict(request.url.params)
        asked.append(params)
        after = params.get("after", "") if pages else ""
        page = [r for r in rows if r[id_field] > after][: int(params["limit"])]
        return httpx.Response(200, json={field: page})

    return httpx.MockTransport(answer), asked


async def test_every_page_of_both_listings_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_class_books, "PUPIL_PAGE", 3)
    monkeypatch.setattr(http_class_books, "CLASS_PAGE", 2)
    pupils, asked_pupils = service(PUPILS, "pupils", "pupil_id")
    classes, asked_classes = service(CLASSES, "classes", "class_id")
    async with (
        httpx.AsyncClient(transport=pupils, base_url="http://p") as p,
        httpx.AsyncClient(transport=classes, base_url="http://c") as c,
    ):
        books = await read_class_books(ClassServices(p, c), sagas={"s": "completed"})
    assert books.pupils == PUPILS
    assert books.classes == CLASSES
    assert (books.pupils_audit, books.classes_audit, books.sagas) == (
        AUDIT,
        AUDIT,
        {"s": "completed"},
    )
    assert [a.get("after") for a in asked_pupils] == [None, "p002", "p005"]
    assert [a.get("after") for a in asked_classes] == [None, "c1", "c3"]


async def test_a_service_that_ignores_after_is_refused_not_half_audited(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(http_class_books, "PUPIL_PAGE", 3)
    pupils, _ = service(PUPILS, "pupils", "pupil_id", pages=False)
    classes, _ = service(CLASSES, "classes", "class_id")
    async with (
        httpx.AsyncClient(transport=pupils, base_url="http://p") as p,
        httpx.AsyncClient(transport=classes, base_url="http://c") as c,
    ):
        with pytest.raises(IncompleteBooks, match="/pupils"):
            await read_class_books(ClassServices(p, c), sagas={})
