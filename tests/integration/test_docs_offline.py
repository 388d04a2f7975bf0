"""`/docs` works offline: the Swagger UI page loads its script, style and icon from this app."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from repository_after.config import ProcessRole
from repository_after.entrypoints.app import create_app
from tests.conftest import accounts_settings
from tests.integration.test_fastapi_routing import _client


@pytest.mark.parametrize("role", list(ProcessRole))
async def test_docs_reference_only_same_origin_assets_and_serve_them(
    role: ProcessRole, tmp_path: Path
) -> None:
    app = create_app(accounts_settings(tmp_path, role=role))
    async for client in _client(app):
        page = await client.get("/docs")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assets = set(re.findall(r'(?:href|src)="([^"]+)"', page.text))
        assert assets == {
            "/docs/static/swagger-ui-bundle.js",
            "/docs/static/swagger-ui.css",
            "/docs/static/favicon-32x32.png",
        }
        assert not re.search(r"https?://|//[a-z]", page.text), "no asset from another origin"
        assert "url: '/openapi.json'" in page.text
        for url in [*sorted(assets), "/openapi.json"]:
            answer = await client.get(url)
            assert answer.status_code == 200, url
            assert answer.content, url
        assert (await client.get("/docs/oauth2-redirect")).status_code == 200
        missing = await client.get("/docs/static/index.html")
        assert (missing.status_code, missing.json()["error"]) == (404, "not_found")
