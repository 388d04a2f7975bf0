"""Settings of the PostgreSQL backend and of orchestrator workers."""

from __future__ import annotations

import socket

import pytest
from pydantic import ValidationError

from repository_after.bootstrap import build_orchestrator
from repository_after.config import Settings
from tests.unit.test_definition_versions import Carrier


def test_server_urls_are_accepted_and_other_schemes_are_refused() -> None:
    for url in (
        "postgresql://postgres@127.0.0.1:5432/db",
        "postgres://u@h/db",
        "mysql://root@127.0.0.1:3306/db",
        "mariadb://u:p@h/db",
    ):
        assert Settings(database_url=url).database_url == url
    with pytest.raises(ValidationError, match="database_url"):
        Settings(database_url="oracle://u@h/db")


def test_the_claim_interval_must_leave_room_to_renew_within_the_lease() -> None:
    with pytest.raises(ValidationError, match="claim_interval"):
        Settings(lease_ttl=1.0, claim_interval=0.6)
    assert Settings(lease_ttl=1.0, claim_interval=0.5).claim_interval == 0.5


def test_the_default_worker_id_is_stable_per_host_and_port() -> None:
    host = socket.gethostname()
    assert Settings(port=8123).resolved_worker_id() == f"{host}:8123"
    assert Settings(port=0).resolved_worker_id().startswith(f"{host}-")
    assert Settings(port=8123, worker_id="w7").resolved_worker_id() == "w7"


def test_the_unknown_version_grace_defaults_to_ten_lease_ttls_and_must_outlast_one() -> None:
    assert Settings().resolved_unknown_version_grace() == 100.0
    assert Settings(lease_ttl=600.0).resolved_unknown_version_grace() == 6000.0
    assert Settings(unknown_version_grace=10.5).resolved_unknown_version_grace() == 10.5
    assert Settings(unknown_version_grace="").resolved_unknown_version_grace() == 100.0  # type: ignore[arg-type]
    for too_short in (10.0, 5.0):
        with pytest.raises(ValidationError, match="unknown_version_grace must be longer"):
            Settings(lease_ttl=10.0, unknown_version_grace=too_short)
    with pytest.raises(ValidationError, match="unknown_version_grace"):
        Settings(unknown_version_grace=0.0)


def test_the_orchestrator_is_built_with_the_configured_grace() -> None:
    settings = Settings(database_url="memory://", lease_ttl=4.0, unknown_version_grace=42.0)
    built = build_orchestrator(settings, participant=Carrier(), observers=())
    assert built.unknown_version_grace == 42.0
    default = build_orchestrator(
        Settings(database_url="memory://", lease_ttl=4.0), participant=Carrier(), observers=()
    )
    assert default.unknown_version_grace == 40.0
