"""The live-events stream limits connections per client (peer address), not globally.

The app is served on real loopback; one client opens many streams from 127.0.0.1 and another
connects from 127.0.0.2 (any 127/8 address is a local source on Linux). The greedy client gets
`STREAMS_PER_CLIENT` streams and then 429; the other client still gets its stream.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import httpx

from repository_after.entrypoints.dashboard import STREAMS_PER_CLIENT
from repository_after.entrypoints.service_process import free_port
from tests.integration.observability_support import orchestrator_settings, served


def _client(url: str, source: str) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=source)
    return httpx.AsyncClient(base_url=url, transport=transport, timeout=10)


async def test_one_client_with_many_streams_does_not_lock_out_another(tmp_path: Path) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    async with served(orchestrator_settings(tmp_path, down)) as url, AsyncExitStack() as stack:
        greedy = await stack.enter_async_context(_client(url, "127.0.0.1"))
        other = await stack.enter_async_context(_client(url, "127.0.0.2"))
        codes = []
        for _ in range(33):
            reply = await stack.enter_async_context(greedy.stream("GET", "/ui/events"))
            codes.append(reply.status_code)
            if reply.status_code != 200:
                await reply.aread()
                assert reply.json()["error"] == "too_many_streams"
        assert codes == [200] * STREAMS_PER_CLIENT + [429] * (33 - STREAMS_PER_CLIENT)

        async with other.stream("GET", "/ui/events") as theirs:
            assert theirs.status_code == 200
            first = await anext(theirs.aiter_text())
            assert first.startswith("retry:")
