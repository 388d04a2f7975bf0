"""End-to-end fixtures: real `sagabank serve` processes on loopback with real SQLite files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from repository_after.entrypoints.service_process import ServiceProcess

pytestmark = pytest.mark.e2e

Launcher = Callable[..., ServiceProcess]


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launcher]:
    """Start services; every one still running at the end of the test is stopped."""
    started: list[ServiceProcess] = []

    def start(
        *, role: str = "accounts", name: str = "accounts", port: int | None = None, **env: object
    ) -> ServiceProcess:
        base = {
            "SAGABANK_DATABASE_URL": f"sqlite:///{tmp_path / (name + '.db')}",
            "SAGABANK_CREDIT_FAILURE_RATE": "0",
            "SAGABANK_ADMIN_TOKEN": "",
            "SAGABANK_LOG_LEVEL": "WARNING",
        }
        base.update({f"SAGABANK_{k.upper()}": str(v) for k, v in env.items()})
        service = ServiceProcess(env=base, role=role, port=port, log_path=tmp_path / f"{name}.log")
        started.append(service)
        return service.start()

    yield start
    for service in started:
        service.stop()
