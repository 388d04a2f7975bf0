"""`GET /ui/events`: the dashboard's server-sent event stream, read by a plain HTTP client."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import httpx

from tests.e2e.conftest import Launcher


async def test_the_event_stream_carries_each_transition_of_a_transfer(
    launch: Launcher, tmp_path: Path
) -> None:
    service = launch(role="all", name="all", log_level="INFO", demo_accounts=2)
    # Start-up recovery claims sagas leased under this worker's id: transfer once it has run.
    deadline = time.monotonic() + 30
    while "recovery:" not in (tmp_path / "all.log").read_text():
        assert time.monotonic() < deadline, "start-up recovery never ran"
        await asyncio.sleep(0.05)
    seen: list[tuple[str, str]] = []
    async with (
        httpx.AsyncClient(base_url=service.url, timeout=10.0) as client,
        client.stream("GET", "/ui/events") as stream,
    ):
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.aiter_lines()
        assert await anext(lines) == "retry: 1000"
        transfer = asyncio.create_task(
            client.post(
                "/transfers",
                headers={"transaction-id": "sse-1"},
                json={"source": "acc-01", "target": "acc-02", "amount": 5},
            )
        )
        async with asyncio.timeout(10):
            async for line in lines:
                if line.startswith("data: "):
                    message = json.loads(line.removeprefix("data: "))
                    assert message["transaction_id"] == "sse-1"
                    seen.append((message["event"], message["after"]))
                    if message["after"] == "completed":
                        break
        assert (await transfer).json()["status"] == "completed"
    assert seen == [
        ("operation_started", "debiting"),
        ("attempt", "debiting"),
        ("operation_started", "crediting"),
        ("attempt", "completed"),
    ]
