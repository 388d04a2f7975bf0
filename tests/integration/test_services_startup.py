"""Start-up with the services map, as an operator meets it: `sagabank serve` (and the uvicorn
target `repository_after.server`) refuse bad `SAGABANK_SERVICES` or a saga step whose service
has no URL with one clear message, a non-zero exit, no traceback and no token repeated, before
anything is opened; and a served orchestrator waits for every service its sagas call (a real
account service up, a second service down) before it recovers or claims anything."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from repository_after.config import ProcessRole
from repository_after.domain.saga_definition import SagaDefinition, Step, StepKind
from repository_after.entrypoints.app import create_app
from tests.integration.observability_support import served, settings

TOKEN = "s3rvice-t0ken-never-shown"

#: Run `sagabank` (or import the uvicorn target) with a delivery saga registered beside the
#: built-in ones, as a deployment adding a saga type does: its "reserve" step calls "warehouse"
#: (unlike the order saga's "inventory", no process hosts it by default).
WITH_ORDER = """
import sys
from repository_after.domain.saga_definition import SagaDefinition, Step, StepKind
from repository_after.domain.sagas import DEFINITIONS

def order_step(name, service, kind, **extra):
    request = {"order_id": "order_id"}
    return Step(name=name, service=service, action=name, running_status=name,
                request=request, kind=kind, **extra)

DEFINITIONS["delivery"] = SagaDefinition(name="delivery", steps=(
    order_step("create", "shipping", StepKind.COMPENSATABLE, compensation="cancel"),
    order_step("reserve", "warehouse", StepKind.COMPENSATABLE, compensation="release"),
    order_step("confirm", "shipping", StepKind.RETRIABLE),
))
if sys.argv[1] == "server":
    import repository_after.server
else:
    from repository_after.entrypoints.cli import main
    main()
"""
DELIVERY_REFUSED = (
    "refusing to start: saga 'delivery' step 'reserve' calls service 'warehouse', which has "
    "no URL: set it in SAGABANK_SERVICES"
)
SHIPPING_ONLY = json.dumps({"shipping": {"url": "http://127.0.0.1:1", "token": TOKEN}})


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SAGABANK_")}
    return subprocess.run(
        [sys.executable, *args],
        env={
            **clean,
            "SAGABANK_DATABASE_URL": f"sqlite:///{tmp_path / 'sagas.db'}",
            "SAGABANK_PORT": "0",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def serve(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run(["-m", "repository_after.entrypoints.cli", "serve"], tmp_path, **env)


def with_order(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run(["-c", WITH_ORDER, *args], tmp_path, **env)


def assert_refused_cleanly(done: subprocess.CompletedProcess[str], tmp_path: Path) -> str:
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    assert 'File "' not in output
    assert TOKEN not in output
    assert not (tmp_path / "sagas.db").exists()  # refused before anything was opened
    return output


@pytest.mark.parametrize("role", ["all", "orchestrator"])
def test_serve_refuses_a_saga_step_whose_service_has_no_url(tmp_path: Path, role: str) -> None:
    done = with_order(tmp_path, "serve", SAGABANK_ROLE=role, SAGABANK_SERVICES=SHIPPING_ONLY)
    assert done.returncode == 2
    output = assert_refused_cleanly(done, tmp_path)
    lines = output.strip().splitlines()
    assert lines == [DELIVERY_REFUSED], output  # one line: nothing was logged before it


def test_the_uvicorn_target_refuses_with_the_message_alone(tmp_path: Path) -> None:
    done = with_order(tmp_path, "server", SAGABANK_SERVICES=SHIPPING_ONLY)
    assert done.returncode == 1
    assert_refused_cleanly(done, tmp_path)
    assert done.stderr.strip() == DELIVERY_REFUSED
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("services", "expected"),
    [
        ({"inventory": {"url": f"http://ops:{TOKEN}@inv:1"}}, "inventory.url: must not carry"),
        ({"inventory": {"url": "http://inv:1", "token": TOKEN, "tls": 1}}, "inventory.tls"),
        ({"in ventory": {"url": "http://inv:1", "token": TOKEN}}, "service name"),
    ],
)
def test_serve_refuses_bad_services_naming_the_setting_and_echoing_no_token(
    tmp_path: Path, services: object, expected: str
) -> None:
    done = serve(tmp_path, SAGABANK_SERVICES=json.dumps(services))
    assert done.returncode == 2
    output = assert_refused_cleanly(done, tmp_path)
    assert output.startswith("refusing to start: SAGABANK_SERVICES: ")
    assert expected in output


def test_serve_refuses_services_that_are_not_json(tmp_path: Path) -> None:
    done = serve(tmp_path, SAGABANK_SERVICES='{"inventory": {"token": "' + TOKEN)
    assert done.returncode == 2
    output = assert_refused_cleanly(done, tmp_path)
    assert output.strip() == "refusing to start: SAGABANK_SERVICES: not valid JSON"


@pytest.mark.parametrize("role", ["all", "orchestrator"])
def test_serve_refuses_a_listed_service_without_a_token_while_a_service_token_is_set(
    tmp_path: Path, role: str
) -> None:
    """Fail closed: the service token no longer goes to a separately run service, so one that
    does not say its token would be refused (401) mid-saga; the operator learns it now."""
    listed = {"inventory": {"url": "http://127.0.0.1:1"}, "orders": {"url": "http://127.0.0.1:2"}}
    done = serve(
        tmp_path,
        SAGABANK_ROLE=role,
        SAGABANK_SERVICE_TOKEN=TOKEN,
        SAGABANK_SERVICES=json.dumps(listed),
    )
    assert done.returncode == 2
    output = assert_refused_cleanly(done, tmp_path)
    assert output.strip().splitlines() == [
        "refusing to start: SAGABANK_SERVICES: 'inventory', 'orders' have no token, and "
        "SAGABANK_SERVICE_TOKEN (the account service's credential) goes to no service listed "
        'with its own URL: give each its own "token", or "token": null for one that takes none'
    ]


def test_other_commands_refuse_bad_settings_the_same_way(tmp_path: Path) -> None:
    done = run(
        ["-m", "repository_after.entrypoints.cli", "audit"],
        tmp_path,
        SAGABANK_SERVICES=json.dumps({"inventory": {"url": "ftp://inv", "token": TOKEN}}),
    )
    assert done.returncode == 2
    output = assert_refused_cleanly(done, tmp_path)
    assert "SAGABANK_SERVICES: inventory.url: must be an http:// or https:// URL" in output


def step(name: str, service: str, kind: StepKind, **extra: str) -> Step:
    return Step(
        name=name,
        service=service,
        action=name,
        running_status=f"{name}ing",
        request={"account_id": "account_id"},
        kind=kind,
        **extra,  # type: ignore[arg-type]
    )


#: A saga over two services: the account service and a second one.
TWO = SagaDefinition(
    name="two",
    steps=(
        step("debit", "accounts", StepKind.COMPENSATABLE, compensation="compensate_debit"),
        step("ship", "shipping", StepKind.RETRIABLE),
    ),
)


async def until(condition: Callable[[], object], deadline: float = 10.0) -> None:
    """Poll `condition` until it holds, within a deadline."""
    async with asyncio.timeout(deadline):
        while not condition():
            await asyncio.sleep(0.01)


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records]


async def _health(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    body = b'{"status":"ok"}'
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        + f"content-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()
    writer.close()


async def test_a_served_orchestrator_waits_for_every_service_its_sagas_call(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    # "shipping" is down: its port is held (nobody else takes it) but nothing listens yet.
    down = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    down.bind(("127.0.0.1", 0))
    shipping = f"http://127.0.0.1:{down.getsockname()[1]}"
    async with served(settings(tmp_path, "accounts", role=ProcessRole.ACCOUNTS)) as accounts:
        orchestrator = create_app(
            settings(
                tmp_path,
                "sagas",
                role=ProcessRole.ORCHESTRATOR,
                accounts_url=accounts,
                services={"shipping": {"url": shipping}},
            ),
            definitions={TWO.name: TWO},
        )
        async with orchestrator.router.lifespan_context(orchestrator):
            readiness = orchestrator.state.readiness
            assert readiness.services == {"accounts": accounts, "shipping": shipping}
            await until(lambda: readiness.waiting == {"shipping"})
            waiting = f"waiting for service 'shipping' at {shipping}"
            await until(lambda: sum(waiting in m for m in messages(caplog)) >= 2)
            assert not readiness.ready
            assert not any("'accounts'" in m for m in messages(caplog) if "waiting" in m)
            assert not any(m.startswith("recovery:") for m in messages(caplog))  # no worker yet
            assert not orchestrator.state.recovery.done()
            # Shipping comes up: readiness completes, and the worker starts (recovery first).
            server = await asyncio.start_server(_health, sock=down)
            try:
                await until(lambda: readiness.ready)
                await until(lambda: any(m.startswith("recovery:") for m in messages(caplog)))
            finally:
                server.close()
