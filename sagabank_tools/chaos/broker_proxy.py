"""A TCP relay in front of the broker that cuts every connection on demand.

The services of a choreography chaos run reach RabbitMQ through it (their
`SAGABANK_BROKER_URL` names its port). It only copies bytes both ways with asyncio streams (no
AMQP is read or written here); `cut()` closes every open connection at once, as a network
failure would, and aio-pika's robust connection must reconnect (through the proxy again).
Unacked deliveries of a cut channel go back to their queues; a publish in flight fails and its
outbox row is retried.
"""

from __future__ import annotations

import asyncio
import contextlib


class BrokerProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self.cuts = 0  # connections closed by `cut`
        self._server: asyncio.Server | None = None
        self._open: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        try:
            broker_r, broker_w = await asyncio.open_connection(*self.upstream)
        except OSError:  # the broker is down (restarting): the client retries
            client_w.close()
            return
        self._open.update((client_w, broker_w))
        try:
            await asyncio.gather(_pipe(client_r, broker_w), _pipe(broker_r, client_w))
        finally:
            for writer in (client_w, broker_w):
                self._open.discard(writer)
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()

    def cut(self) -> int:
        """Close every relayed connection now; how many client/broker pairs were open."""
        pairs = len(self._open) // 2
        for writer in list(self._open):
            transport = writer.transport
            transport.abort()
        self._open.clear()
        self.cuts += pairs
        return pairs

    async def cut_when_open(self, timeout: float = 30.0) -> int:
        """`cut`, once a connection is open (a cut during a restart would cut nothing)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not self._open and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)  # polling our own set: connections arrive from outside
        return self.cut()

    async def close(self) -> None:
        """Stop listening, cut every connection and wait for their relays to end."""
        if self._server is not None:
            self._server.close()
        self.cut()
        if self._handlers:
            await asyncio.wait(set(self._handlers), timeout=5.0)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(OSError):
        writer.close()
