"""Shared fixtures: backends for the contract suites, and an account-service app on SQLite.

Also the suite's one CI guard (`pytest_runtest_makereport` below): when the `CI` environment
variable is set, a skipped test is reported as FAILED, with its skip reason. Locally a missing
service (PostgreSQL, node, a second black-box URL) may skip a test; in CI that would count a test
that never ran as a pass, so every skip path, today's and any added later, fails there instead.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import Phase, settings

from repository_after.adapters.memory_accounts import InMemoryAccountStore
from repository_after.adapters.memory_saga_log import InMemorySagaLog
from repository_after.adapters.sqlite_accounts import SqliteAccountStore
from repository_after.adapters.sqlite_saga_log import SqliteSagaLog
from repository_after.bootstrap import build_account_store, build_saga_log
from repository_after.config import ProcessRole, Settings
from repository_after.entrypoints.app import create_app
from repository_after.entrypoints.service_process import ServiceProcess
from repository_after.service_layer.ports import AccountStore
from repository_after.service_layer.saga_ports import SagaLog
from tests import mariadb
from tests.pg import fresh_database

# The made-up host names the in-process clients use (httpx's base_url, TestClient's
# `testserver`) are trusted for the test run, spawned servers included; the loopback default
# itself is tested in tests/integration/test_request_guards.py with explicit settings.
os.environ.setdefault(
    "SAGABANK_TRUSTED_HOSTS", "127.0.0.1,localhost,::1,sagabank,t,accounts.test,testserver"
)

# `make mutate` runs pytest with `--hypothesis-profile=mutation`: a mutant the model-based test
# catches is killed by the first failing example; shrinking that example (minutes per mutant)
# tells mutation testing nothing more. No example database either: each run starts clean.
settings.register_profile(
    "mutation", phases=[Phase.explicit, Phase.reuse, Phase.generate], database=None
)

BACKENDS = ["memory", "sqlite", "postgres", "mysql"]


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    # A skip's longrepr is (path, line, "Skipped: <reason>"); anything else is shown whole.
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _fail_skip_under_ci(report: pytest.TestReport | pytest.CollectReport) -> None:
    # xfail is reported as "skipped" with `wasxfail`: an expected failure stays one.
    if not os.environ.get("CI") or not report.skipped or hasattr(report, "wasxfail"):
        return
    report.outcome = "failed"
    report.longrepr = (
        f"{_skip_reason(report)}\n"
        "CI is set, so this skip is a failure: a test that did not run must not pass in CI "
        "(tests/conftest.py)"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Under CI, a test skipped in setup (a fixture, a skip mark) or in its body fails."""
    report = yield
    _fail_skip_under_ci(report)
    return report


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(
    collector: pytest.Collector,
) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
    """Under CI, a module skipped whole (`pytest.skip(..., allow_module_level=True)`) fails."""
    report = yield
    _fail_skip_under_ci(report)
    return report


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test (skip locally / fail in CI if unreachable)."""
    with fresh_database() as url:
        yield url


@pytest.fixture
def mysql_url() -> Iterator[str]:
    """A fresh MariaDB database for this test (skip locally / fail in CI if unreachable)."""
    with mariadb.fresh_database() as url:
        yield url


@pytest.fixture(params=["postgres", "mysql"])
def server_url(request: pytest.FixtureRequest) -> str:
    """A fresh database on each database server in turn: PostgreSQL, then MariaDB."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture(params=BACKENDS)
async def account_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AccountStore]:
    store: AccountStore
    if request.param == "postgres":
        store = build_account_store(request.getfixturevalue("postgres_url"))
    elif request.param == "mysql":
        store = build_account_store(request.getfixturevalue("mysql_url"))
    elif request.param == "sqlite":
        store = SqliteAccountStore(tmp_path / "accounts.db")
    else:
        store = InMemoryAccountStore()
    yield store
    await store.close()


@pytest.fixture(params=BACKENDS)
async def saga_log(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SagaLog]:
    log: SagaLog
    if request.param == "postgres":
        log = build_saga_log(request.getfixturevalue("postgres_url"))
    elif request.param == "mysql":
        log = build_saga_log(request.getfixturevalue("mysql_url"))
    elif request.param == "sqlite":
        log = SqliteSagaLog(tmp_path / "sagas.db")
    else:
        log = InMemorySagaLog()
    yield log
    await log.close()


def accounts_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": f"sqlite:///{tmp_path / 'accounts.db'}",
        "role": ProcessRole.ACCOUNTS,
        "credit_failure_rate": 0.0,
        "demo_accounts": 0,
        "admin_token": None,
        "service_token": None,
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


async def asgi_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sagabank") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The account service on a real SQLite file, reached through ASGITransport."""
    async for client in asgi_client(accounts_settings(tmp_path)):
        yield client


Launcher = Callable[..., ServiceProcess]


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launcher]:
    """Start `sagabank serve` processes on loopback (real SQLite files in `tmp_path`); every one
    still running at the end of the test is stopped."""
    started: list[ServiceProcess] = []

    def start(
        *, role: str = "accounts", name: str = "accounts", port: int | None = None, **env: object
    ) -> ServiceProcess:
        base = {
            "SAGABANK_DATABASE_URL": f"sqlite:///{tmp_path / (name + '.db')}",
            "SAGABANK_CREDIT_FAILURE_RATE": "0",
            "SAGABANK_ADMIN_TOKEN": "",
            "SAGABANK_SERVICE_TOKEN": "",
            "SAGABANK_LOG_LEVEL": "WARNING",
        }
        base.update({f"SAGABANK_{k.upper()}": str(v) for k, v in env.items()})
        service = ServiceProcess(env=base, role=role, port=port, log_path=tmp_path / f"{name}.log")
        started.append(service)
        return service.start()

    yield start
    for service in started:
        service.stop()
