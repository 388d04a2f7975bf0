"""The dashboard's routes: the page and its assets are served by the app itself (works offline)."""

from __future__ import annotations

import re
from pathlib import Path

from repository_after.entrypoints.dashboard import STATIC
from repository_after.entrypoints.service_process import free_port
from tests.integration.observability_support import orchestrator_client, orchestrator_settings


async def test_the_page_and_every_asset_it_references_are_served_locally(tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    async with orchestrator_client(
        orchestrator_settings(tmp_path, down), wait_recovery=False
    ) as client:
        page = await client.get("/ui")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assets = re.findall(r'(?:href|src)="(/ui/static/[^"]+)"', page.text)
        assert len(assets) == 6  # a stylesheet, an icon and four scripts
        for asset in assets:
            assert (await client.get(asset)).status_code == 200
        assert (await client.get("/ui/transfers/any-id")).text == page.text
        assert (await client.get("/ui/sagas/order/any-id")).text == page.text
        missing = await client.get("/ui/static/../../config.py")
        assert missing.status_code == 404
        assert missing.json()["error"] == "not_found"
        browser = await client.get("/", headers={"accept": "text/html"})
        assert (browser.status_code, browser.headers["location"]) == (307, "/ui")
        assert (await client.get("/")).json()["dashboard"] == "/ui"
        books = await client.get("/ui/api/books")
        assert (books.status_code, books.json()["error"]) == (503, "accounts_unavailable")


def test_no_asset_loads_anything_from_another_origin() -> None:
    for path in STATIC.iterdir():
        text = path.read_text()
        assert not re.search(r"(?:src|href)=\"https?:|url\(https?:|import .* from", text), path
        assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
        assert "https://" not in text
