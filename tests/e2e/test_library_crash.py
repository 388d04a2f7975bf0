"""The saga library's crash test: a real process running the worked order example is SIGKILLed
at every step boundary, and a fresh process resumes it from the durable log.

Boundaries (`library_crash_child`): before and after each action, compensation and settlement
(after = its effect committed in the services file, the engine not yet told) and before and
after each saga-log write. A first run without a kill gives each scenario's boundaries, its final
status and its effects; then, for every boundary N, a fresh directory: the child is killed at N
(asserted: it died of SIGKILL, and the boundary it wrote down is the N-th of the uncrashed run),
and this process, a fresh one, opens the same two SQLite files, `recover`s, and re-submits the
order with the same saga id (as a caller whose run died would). The saga must end in the same
status as without a crash, with exactly the same effects in the same order: every reservation,
charge, shipment, refund and release applied once, under its step's key, compensations last
first. "no-address" is refused at the pivot and compensates two steps, so its crashes fall in the
middle of compensating too.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from repository_after.library import SagaNotFound, SagaRunner
from repository_after.library.examples.order import order_saga
from repository_after.library.examples.order_services import OrderServices
from tests.e2e.library_crash_child import order_of

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

SCENARIOS = ("shipped", "no-address")


def child(directory: Path, scenario: str, kill_at: int | None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    env.pop("LIBRARY_KILL_AT", None)
    if kill_at is not None:
        env["LIBRARY_KILL_AT"] = str(kill_at)
    return subprocess.run(
        [sys.executable, "-m", "tests.e2e.library_crash_child", str(directory), scenario],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def effects(directory: Path) -> list[tuple[str, str, str]]:
    services = OrderServices(directory / "services.db")
    try:
        return services.effects()
    finally:
        services.close()


async def resume(directory: Path, scenario: str) -> tuple[str | None, list[Any], str]:
    """A fresh runner on the crashed run's files: `recover`, then re-submit the order. (The
    status and the effects after the recovery alone, None if the kill came before the saga was
    logged; the status after the re-submission.)"""
    services = OrderServices(directory / "services.db")
    order = order_of(scenario)
    try:
        async with SagaRunner(
            [order_saga(services)], log=directory / "sagas.db", observers=()
        ) as runner:
            await runner.recover()
            try:
                recovered: str | None = (await runner.inspect(order.order_id)).status
            except SagaNotFound:
                recovered = None
            after_recovery = services.effects()
            view = await runner.run("order", order, saga_id=order.order_id)
            return recovered, after_recovery, view.status
    finally:
        services.close()


@pytest.fixture(scope="module")
def uncrashed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Each scenario run without a kill: its boundaries, final status and effects."""
    shapes = {}
    for scenario in SCENARIOS:
        directory = tmp_path_factory.mktemp(f"uncrashed-{scenario}")
        done = child(directory, scenario, None)
        assert done.returncode == 0, done.stderr
        shape = json.loads((directory / "boundaries.json").read_text())
        shapes[scenario] = {**shape, "effects": effects(directory)}
    return shapes


def test_the_uncrashed_runs_are_what_the_example_promises(
    uncrashed: dict[str, dict[str, Any]],
) -> None:
    shipped, refused = uncrashed["shipped"], uncrashed["no-address"]
    assert shipped["status"] == "completed"
    assert [(k, key) for k, key, _ in shipped["effects"]] == [
        ("reserve", "order-1:reserve_inventory"),
        ("charge", "order-1:process_payment"),
        ("ship", "order-1:ship_order"),
    ]
    assert refused["status"] == "compensated"
    assert [(k, key) for k, key, _ in refused["effects"]] == [
        ("reserve", "order-2:reserve_inventory"),
        ("charge", "order-2:process_payment"),
        ("refund", "order-2:process_payment"),
        ("release", "order-2:reserve_inventory"),
    ]
    assert len(shipped["labels"]) == 14
    assert len(refused["labels"]) == 21


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_a_kill_at_every_boundary_resumes_to_the_same_end_with_each_effect_applied_once(
    scenario: str, uncrashed: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    expected = uncrashed[scenario]
    labels: list[str] = expected["labels"]
    failures = []
    for n, label in enumerate(labels, start=1):
        directory = tmp_path / f"kill-{n:02d}"
        directory.mkdir()
        killed = child(directory, scenario, n)
        assert killed.returncode == -signal.SIGKILL, (n, label, killed.stderr)
        assert (directory / "killed").read_text() == label  # the crash point really fired

        recovered, after_recovery, status = asyncio.run(resume(directory, scenario))
        got = effects(directory)
        if status != expected["status"] or got != expected["effects"]:
            failures.append((n, label, "re-submitted", status, got))
        logged = label != "before log create"  # else nothing was logged: nothing to recover
        if logged and (recovered, after_recovery) != (expected["status"], expected["effects"]):
            failures.append((n, label, "recovered", recovered, after_recovery))
    assert failures == []
