"""The production participant client (httpx over its production transport) against real
loopback sockets: a silent peer is a timeout and a closed port a transport error, both UNKNOWN
outcomes."""

from __future__ import annotations

import asyncio
import json

import httpx

from repository_after.adapters.http_participant import HttpParticipant
from repository_after.domain.saga import Outcome
from repository_after.entrypoints.service_process import free_port

BODY = {"account": "acc-01", "amount": 5}


async def _serve(handler) -> tuple[asyncio.Server, str]:  # type: ignore[no-untyped-def]
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


async def _call(
    url: str, timeout: float = 2.0, transport: httpx.AsyncBaseTransport | None = None
) -> object:
    participant = HttpParticipant({"accounts": url}, transport=transport)
    try:
        return await participant.call(
            service="accounts", operation="debit", transaction_id="tx-9", body=BODY, timeout=timeout
        )
    finally:
        await participant.close()


async def test_a_peer_that_never_answers_is_an_unknown_timeout() -> None:
    accepted, done = asyncio.Event(), asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        await reader.read(65536)  # takes the request, answers nothing until the client gave up
        await done.wait()
        writer.close()
        await writer.wait_closed()

    server, url = await _serve(silent)
    async with server:
        result = await _call(url, timeout=0.3)
        done.set()
    assert accepted.is_set()
    assert result.outcome is Outcome.UNKNOWN  # type: ignore[attr-defined]
    assert result.error == "timeout"  # type: ignore[attr-defined]


async def test_a_closed_port_is_an_unknown_transport_error() -> None:
    result = await _call(f"http://127.0.0.1:{free_port()}")
    assert result.outcome is Outcome.UNKNOWN  # type: ignore[attr-defined]
    assert result.error == "transport: ConnectError"  # type: ignore[attr-defined]


class _Resetting(httpx.AsyncBaseTransport):
    """A transport that fails with a socket error httpx does not translate."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        raise ConnectionResetError("reset by peer")


async def test_a_socket_error_the_transport_did_not_name_is_still_unknown() -> None:
    result = await _call("http://127.0.0.1:9", transport=_Resetting())
    assert result.outcome is Outcome.UNKNOWN  # type: ignore[attr-defined]
    assert result.error == "transport: ConnectionResetError"  # type: ignore[attr-defined]


async def test_the_request_carries_the_key_and_the_body_and_a_2xx_succeeds() -> None:
    seen: dict[str, object] = {}

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
        seen["line"] = lines[0]
        seen["key"] = {k.lower(): v for k, v in headers.items()}["transaction-id"]
        length = int({k.lower(): v for k, v in headers.items()}["content-length"])
        seen["body"] = json.loads(await reader.readexactly(length))
        payload = b'{"status":"applied"}'
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(payload), payload)
        )
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server, url = await _serve(answer)
    async with server:
        result = await _call(url)
    assert seen == {"line": "POST /debit HTTP/1.1", "key": "tx-9", "body": BODY}
    assert result.outcome is Outcome.SUCCEEDED  # type: ignore[attr-defined]
    assert result.body == {"status": "applied"}  # type: ignore[attr-defined]


async def test_a_redirect_is_not_followed_and_is_an_unknown_outcome() -> None:
    requests: list[bytes] = []

    async def redirect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        requests.append(head.split(b"\r\n")[0])
        writer.write(
            b"HTTP/1.1 307 Temporary Redirect\r\nlocation: /elsewhere\r\ncontent-length: 0\r\n\r\n"
        )
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server, url = await _serve(redirect)
    async with server:
        result = await _call(url)
    assert requests == [b"POST /debit HTTP/1.1"]  # /elsewhere was never asked
    assert result.outcome is Outcome.UNKNOWN  # type: ignore[attr-defined]
    assert result.status_code == 307  # type: ignore[attr-defined]
