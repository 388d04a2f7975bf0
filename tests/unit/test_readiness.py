"""Readiness waits for every service the registered sagas call (`GET {url}/health`), says which
ones it still waits for, asks a service that answered no more, and sends no credential.
Two fake services on an `httpx.MockTransport`: "a" is up, "b" is down until the test says."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from repository_after.entrypoints.readiness import Readiness, wait_for_services

A, B = "http://a.test:8100", "http://b.test/api"


class FakeServices:
    def __init__(self, b_answer: int | None = None) -> None:
        self.b_answer = b_answer  # None: b refuses connections
        self.probes: Counter[str] = Counter()
        self.authorized: list[str] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.probes[url] += 1
        if "authorization" in request.headers:
            self.authorized.append(url)
        if url == f"{A}/health":
            return httpx.Response(200, json={"status": "ok"})
        if url == f"{B}/health":
            if self.b_answer is None:
                raise httpx.ConnectError("refused", request=request)
            return httpx.Response(self.b_answer, json={"status": "starting"})
        return httpx.Response(404)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)


async def until(condition: Callable[[], object], deadline: float = 5.0) -> None:
    """Poll `condition` until it holds (a deadline, not a guess at how long it takes)."""
    async with asyncio.timeout(deadline):
        while not condition():
            await asyncio.sleep(0.005)


def waiting_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("waiting for")]


@pytest.mark.parametrize("b_answer", [None, 503])
async def test_readiness_stays_not_ready_while_one_service_is_down_and_names_it(
    caplog: pytest.LogCaptureFixture, b_answer: int | None
) -> None:
    caplog.set_level(logging.INFO, logger="repository_after.entrypoints.readiness")
    fake = FakeServices(b_answer)
    readiness = Readiness({"a": A, "b": B})
    task = asyncio.create_task(
        wait_for_services(readiness, transport=fake.transport(), max_backoff=0.01)
    )
    try:
        await until(lambda: len(waiting_lines(caplog)) >= 3)
        assert not task.done()
        assert not readiness.ready
        assert readiness.waiting == {"b"}
        lines = waiting_lines(caplog)
        assert all(f"service 'b' at {B}" in line for line in lines)
        assert not any("'a'" in line for line in lines)
        assert fake.probes[f"{A}/health"] == 1  # answered once: not asked again
        assert fake.probes[f"{B}/health"] >= 3
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_readiness_completes_once_the_last_service_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="repository_after.entrypoints.readiness")
    fake = FakeServices()
    readiness = Readiness({"a": A, "b": B})
    task = asyncio.create_task(
        wait_for_services(readiness, transport=fake.transport(), max_backoff=0.01)
    )
    await until(lambda: waiting_lines(caplog))
    assert readiness.waiting == {"b"}
    fake.b_answer = 200
    async with asyncio.timeout(5):
        await task
    assert readiness.ready
    assert readiness.waiting == set()
    assert fake.probes[f"{A}/health"] == 1
    assert fake.authorized == []  # the probe carries no service's token


async def test_all_services_up_is_ready_at_the_first_round_without_a_waiting_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="repository_after.entrypoints.readiness")
    fake = FakeServices(200)
    readiness = Readiness({"a": A, "b": B})
    async with asyncio.timeout(5):
        await wait_for_services(readiness, transport=fake.transport())
    assert readiness.ready
    assert dict(fake.probes) == {f"{A}/health": 1, f"{B}/health": 1}
    assert waiting_lines(caplog) == []


async def test_nothing_to_wait_for_is_ready_at_once() -> None:
    fake = FakeServices()
    readiness = Readiness({})
    assert readiness.ready
    async with asyncio.timeout(5):
        await wait_for_services(readiness, transport=fake.transport())
    assert dict(fake.probes) == {}
