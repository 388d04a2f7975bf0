"""Serve an ASGI app with uvicorn on a loopback port, inside the caller's event loop.

The chaos process embeds the fault proxy this way: uvicorn owns the HTTP protocol, the app owns
the behaviour. The socket is bound (port 0, so no race for a free port) and listening before
uvicorn starts, so the URL is known at once; `start` returns when uvicorn accepts connections.
The chaos process keeps its own signals: Ctrl-C ends the run, not just the proxy under it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator

import uvicorn
from starlette.types import ASGIApp

#: Longer than any client pool keeps an idle connection (httpx and aiohttp: 5 s and 15 s), so it
#: is always the client that closes one, and no request is sent on a connection closing under it.
_KEEP_ALIVE = 75
#: How long `stop` lets requests in flight finish before uvicorn cancels them.
_GRACE = 3


class _Embedded(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # SIGINT/SIGTERM stay with the chaos process, whose cleanup stops this server

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()


class LoopbackServer:
    """One ASGI app served on 127.0.0.1 until `stop`."""

    def __init__(self, app: ASGIApp) -> None:
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_keep_alive=_KEEP_ALIVE,
            timeout_graceful_shutdown=_GRACE,
        )
        self._server = _Embedded(config)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(2048)
        port = sock.getsockname()[1]
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        ready = asyncio.create_task(self._server.ready.wait())
        await asyncio.wait({self._task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
            self._task.result()  # uvicorn stopped before serving: raise what stopped it
            raise RuntimeError("the proxy's server stopped before it started")
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        """Stop accepting, let requests in flight finish (up to the grace period), return."""
        if self._task is not None:
            self._server.should_exit = True
            await self._task
