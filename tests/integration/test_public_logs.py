"""The dashboard's logs view of a transaction never shows internal error text.

A storage error's driver text is logged for operators (the root log gets it in full) while the
public view, `/ui/api/transfers/{id}/logs`, shows the line with the error's class name only.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from repository_after.config import ProcessRole
from repository_after.service_layer.ports import StorageError
from tests.conftest import asgi_client
from tests.integration.observability_support import settings

DRIVER_TEXT = 'server closed the connection: FATAL password for user "bank" at 10.9.8.7'


async def test_a_storage_errors_driver_text_stays_out_of_the_public_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async for client in asgi_client(settings(tmp_path, "all", role=ProcessRole.ALL)):
        store = client.app.state.container.account_store  # type: ignore[attr-defined]

        async def broken(*_: Any, **__: Any) -> Any:
            raise StorageError(DRIVER_TEXT)

        monkeypatch.setattr(store, "read", broken)
        with caplog.at_level(logging.ERROR):
            failed = await client.get("/accounts/acc-1", headers={"transaction-id": "tx-leak"})
        assert (failed.status_code, failed.json()["error"]) == (503, "storage_unavailable")
        assert DRIVER_TEXT not in failed.text

        assert any(DRIVER_TEXT in r.getMessage() for r in caplog.records)  # operators see it
        view = await client.get("/ui/api/transfers/tx-leak/logs")
        assert view.status_code == 200
        messages = [line["message"] for line in view.json()["lines"]]
        assert "storage failure: StorageError" in messages
        assert DRIVER_TEXT not in view.text
        assert "10.9.8.7" not in view.text
