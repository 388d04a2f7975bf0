"""Where the black-box suite finds the account service it tests.

- `SAGABANK_BLACKBOX_URL`: the service under test, with no credit faults (evaluation.py sets it,
  for each implementation in turn).
- `SAGABANK_BLACKBOX_FAULT_URL`: a second instance of the same implementation configured with
  `SAGABANK_CREDIT_FAILURE_RATE=1` and `SAGABANK_CREDIT_FAILURE_MODE=after` (every `/credit` is
  applied and then answered with 500), for the tests about lost responses.

With neither set (a plain `pytest` run) the suite starts an account service itself, twice, on
free loopback ports (fresh SQLite files for sagabank), so it never passes vacuously:
`repository_after` by default, or the naive `repository_before` with
`SAGABANK_BLACKBOX_IMPL=before` (which fails the idempotency, compensation and lost-response
tests: that is the point of the comparison). With only the first URL set, the fault tests are
reported as skipped (never as passed), and as failed when `CI` is set (tests/conftest.py).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest

from tests.blackbox.launcher import IMPLEMENTATIONS, LiveServer
from tests.blackbox.support import Bank

URL_VAR = "SAGABANK_BLACKBOX_URL"
FAULT_URL_VAR = "SAGABANK_BLACKBOX_FAULT_URL"
IMPL_VAR = "SAGABANK_BLACKBOX_IMPL"


def _implementation() -> str:
    """Which implementation the suite starts itself: `after` (sagabank) unless told otherwise."""
    impl = os.environ.get(IMPL_VAR, "after")
    if impl not in IMPLEMENTATIONS:
        raise pytest.UsageError(f"{IMPL_VAR} must be one of {', '.join(IMPLEMENTATIONS)}")
    return impl


@pytest.fixture(scope="session")
def service_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if url := os.environ.get(URL_VAR):
        yield url.rstrip("/")
        return
    workdir = tmp_path_factory.mktemp("blackbox")
    with LiveServer(_implementation(), workdir, fault_rate=0.0, name="contract") as server:
        yield server.url


@pytest.fixture(scope="session")
def fault_service_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if url := os.environ.get(FAULT_URL_VAR):
        yield url.rstrip("/")
        return
    if os.environ.get(URL_VAR):
        pytest.skip(f"{URL_VAR} is set but {FAULT_URL_VAR} is not: no faulty service to test")
    workdir = tmp_path_factory.mktemp("blackbox-faults")
    impl = _implementation()
    with LiveServer(impl, workdir, fault_rate=1.0, fault_mode="after", name="faults") as server:
        yield server.url


@pytest.fixture
def client(service_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service_url, timeout=10.0) as c:
        yield c


@pytest.fixture
def bank(client: httpx.Client) -> Bank:
    return Bank(client)


@pytest.fixture
def faulty_bank(fault_service_url: str) -> Iterator[Bank]:
    with httpx.Client(base_url=fault_service_url, timeout=10.0) as c:
        yield Bank(c)
