"""Settings of the PostgreSQL backend and of orchestrator workers."""

from __future__ import annotations

import socket

import pytest
from pydantic import ValidationError

from repository_after.config import Settings


def test_a_postgresql_url_is_accepted_and_other_schemes_are_refused() -> None:
    for url in ("postgresql://postgres@127.0.0.1:5432/db", "postgres://u@h/db"):
        assert Settings(database_url=url).database_url == url
    with pytest.raises(ValidationError, match="database_url"):
        Settings(database_url="mysql://u@h/db")


def test_the_claim_interval_must_leave_room_to_renew_within_the_lease() -> None:
    with pytest.raises(ValidationError, match="claim_interval"):
        Settings(lease_ttl=1.0, claim_interval=0.6)
    assert Settings(lease_ttl=1.0, claim_interval=0.5).claim_interval == 0.5


def test_the_default_worker_id_is_stable_per_host_and_port() -> None:
    host = socket.gethostname()
    assert Settings(port=8123).resolved_worker_id() == f"{host}:8123"
    assert Settings(port=0).resolved_worker_id().startswith(f"{host}-")
    assert Settings(port=8123, worker_id="w7").resolved_worker_id() == "w7"
