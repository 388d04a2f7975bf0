"""The lean HTTP/1.1 client under the participant, against real loopback servers that answer
from a script: connections are reused only when that is safe, and an answer is never taken for
another request's."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable

import pytest
import trustme

from repository_after.adapters.http_transport import HttpTransport, TransportError
from repository_after.entrypoints.service_process import free_port

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b'{"status":"applied"}'


def _answer(body: bytes = OK, *, extra: bytes = b"", head: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n%scontent-length: %d\r\n\r\n%s%s"
        % (head, len(body), body, extra)
    )


async def _read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head, await reader.readexactly(length)


class Server:
    """Counts connections; `handler` serves each one."""

    def __init__(self, handler: Handler, *, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.tls = tls
        self.connections = 0

    async def __aenter__(self) -> str:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.handler(reader, writer)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        self.server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=self.tls)
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()


def _keep_alive(answers: list[bytes], seen: list[bytes] | None = None) -> Handler:
    """Answers requests on one connection, in order, from `answers` (shared by connections)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while answers:
            head, body = await _read_request(reader)
            if seen is not None:
                seen.append(head + body)
            writer.write(answers.pop(0))
            await writer.drain()

    return handler


async def test_a_post_carries_its_headers_and_body_and_reads_the_answer() -> None:
    seen: list[bytes] = []
    async with Server(_keep_alive([_answer()], seen)) as url:
        transport = HttpTransport()
        answer = await transport.post(f"{url}/debit", b'{"a":1}', {"transaction-id": "tx-1"}, 2)
        await transport.close()
    assert answer == (200, OK)
    request = seen[0]
    assert request.startswith(b"POST /debit HTTP/1.1\r\n")
    assert b"\r\ntransaction-id: tx-1\r\n" in request
    assert request.endswith(b'\r\n\r\n{"a":1}')


async def test_a_kept_alive_connection_is_reused() -> None:
    server = Server(_keep_alive([_answer(b'{"n":1}'), _answer(b'{"n":2}')]))
    async with server as url:
        transport = HttpTransport()
        first = await transport.post(f"{url}/debit", b"{}", {}, 2)
        second = await transport.post(f"{url}/debit", b"{}", {}, 2)
        await transport.close()
    assert [first[1], second[1]] == [b'{"n":1}', b'{"n":2}']
    assert server.connections == 1


async def test_connection_close_is_honoured() -> None:
    answers = [_answer(b'{"n":1}', head=b"connection: close\r\n"), _answer(b'{"n":2}')]
    server = Server(_keep_alive(answers))
    async with server as url:
        transport = HttpTransport()
        await transport.post(f"{url}/debit", b"{}", {}, 2)
        second = await transport.post(f"{url}/debit", b"{}", {}, 2)
        await transport.close()
    assert second == (200, b'{"n":2}')
    assert server.connections == 2


async def test_an_idle_connection_past_its_keepalive_is_not_reused() -> None:
    server = Server(_keep_alive([_answer(), _answer()]))
    async with server as url:
        transport = HttpTransport(keepalive=0.0)  # every idle connection is already too old
        await transport.post(f"{url}/debit", b"{}", {}, 2)
        await transport.post(f"{url}/debit", b"{}", {}, 2)
        await transport.close()
    assert server.connections == 2


async def test_a_late_answer_is_never_taken_for_the_next_requests() -> None:
    """The first request times out; its answer arrives later. The second request must get its
    own answer, on a new connection, never the first one's."""
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, body = await _read_request(reader)
        if body == b'"first"':
            await release.wait()
            writer.write(_answer(b'{"for":"first"}'))
            await writer.drain()
            await reader.read()  # until the client closes
            return
        writer.write(_answer(b'{"for":"second"}'))
        await writer.drain()

    server = Server(handler)
    async with server as url:
        transport = HttpTransport()
        with pytest.raises(TimeoutError):
            await transport.post(f"{url}/credit", b'"first"', {}, 0.2)
        release.set()
        second = await transport.post(f"{url}/credit", b'"second"', {}, 2)
        await transport.close()
    assert second == (200, b'{"for":"second"}')
    assert server.connections == 2


async def test_bytes_beyond_the_answer_close_the_connection() -> None:
    """An answer followed by a second, unasked one: the connection is not reused."""
    answers = [_answer(b'{"n":1}', extra=_answer(b'{"n":"stray"}')), _answer(b'{"n":2}')]
    server = Server(_keep_alive(answers))
    async with server as url:
        transport = HttpTransport()
        first = await transport.post(f"{url}/debit", b"{}", {}, 2)
        second = await transport.post(f"{url}/debit", b"{}", {}, 2)
        await transport.close()
    assert (first[1], second[1]) == (b'{"n":1}', b'{"n":2}')
    assert server.connections == 2


async def test_an_interim_answer_is_skipped_for_the_real_one() -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n"
    server = Server(_keep_alive([interim + _answer(b'{"n":1}'), _answer(b'{"n":2}')]))
    async with server as url:
        transport = HttpTransport()
        first = await transport.post(f"{url}/debit", b"{}", {}, 2)
        second = await transport.post(f"{url}/credit", b"{}", {}, 2)
        await transport.close()
    assert (first, second) == ((200, b'{"n":1}'), (200, b'{"n":2}'))
    assert server.connections == 1  # the connection stayed in step with its answers


async def test_a_chunked_answer_is_read_whole() -> None:
    chunked = (
        b'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{"n":\r\n2\r\n1}\r\n0\r\n\r\n'
    )
    async with Server(_keep_alive([chunked])) as url:
        transport = HttpTransport()
        answer = await transport.post(f"{url}/debit", b"{}", {}, 2)
        await transport.close()
    assert answer == (200, b'{"n":1}')


async def _failure(handler: Handler, timeout: float = 2.0) -> str:
    async with Server(handler) as url:
        transport = HttpTransport()
        try:
            await transport.post(f"{url}/debit", b"{}", {}, timeout)
        except TransportError as exc:
            return exc.kind
        finally:
            await transport.close()
    raise AssertionError("no TransportError")


async def test_a_peer_closing_before_answering_is_server_disconnected() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)

    assert await _failure(hang_up) == "ServerDisconnected"


async def test_an_answer_that_breaks_off_is_a_read_error() -> None:
    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"half')
        await writer.drain()

    assert await _failure(broken) == "ReadError"


async def test_garbage_is_a_read_error() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"SMTP ready\r\n\r\n")
        await writer.drain()
        await reader.read()

    assert await _failure(garbage) == "ReadError"


async def test_an_answer_too_large_is_a_read_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("repository_after.adapters.http_transport.MAX_BODY_BYTES", 10)
    assert await _failure(_keep_alive([_answer(b'{"x":"' + b"y" * 20 + b'"}')])) == "ReadError"


async def test_a_refused_connection_is_a_connect_error() -> None:
    transport = HttpTransport()
    with pytest.raises(TransportError) as caught:
        await transport.post(f"http://127.0.0.1:{free_port()}/debit", b"{}", {}, 2)
    await transport.close()
    assert caught.value.kind == "ConnectError"


async def test_waiting_for_a_free_connection_counts_against_the_timeout() -> None:
    release = asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await release.wait()
        writer.write(_answer())
        await writer.drain()

    async with Server(slow) as url:
        transport = HttpTransport(limit=1)
        first = asyncio.create_task(transport.post(f"{url}/debit", b"{}", {}, 5))
        await asyncio.sleep(0)  # the first takes the only connection
        with pytest.raises(TimeoutError):
            await transport.post(f"{url}/debit", b"{}", {}, 0.2)
        release.set()
        assert await first == (200, OK)
        await transport.close()


@pytest.mark.parametrize(
    "headers", [{"transaction-id": "a\r\nx-evil: 1"}, {"x\nevil": "1"}, {"a:b": "1"}]
)
async def test_a_header_that_would_break_the_request_is_refused(headers: dict[str, str]) -> None:
    transport = HttpTransport()
    with pytest.raises(ValueError, match="would break the request"):
        await transport.post("http://127.0.0.1:9/debit", b"{}", headers, 1)


@pytest.mark.parametrize("url", ["ftp://example/x", "http:///nohost", "localhost:80/x"])
async def test_a_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="not an http"):
        await HttpTransport().post(url, b"{}", {}, 1)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _tls_server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


async def test_https_verifies_the_server_and_reuses_the_connection(ca: trustme.CA) -> None:
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    server = Server(
        _keep_alive([_answer(b'{"n":1}'), _answer(b'{"n":2}')]), tls=_tls_server_context(ca)
    )
    async with server as url:
        transport = HttpTransport(ssl_context=trusting)
        first = await transport.post(f"{url}/debit", b"{}", {}, 2)
        second = await transport.post(f"{url}/credit", b"{}", {}, 2)
        await transport.close()
    assert url.startswith("https://")
    assert (first, second) == ((200, b'{"n":1}'), (200, b'{"n":2}'))
    assert server.connections == 1


async def test_https_to_a_server_nobody_vouches_for_is_a_connect_error(ca: trustme.CA) -> None:
    # No context given: the system's trust store, which does not know this test's CA.
    async with Server(_keep_alive([_answer()]), tls=_tls_server_context(ca)) as url:
        transport = HttpTransport()
        with pytest.raises(TransportError) as failed:
            await transport.post(f"{url}/debit", b"{}", {}, 2)
        await transport.close()
    assert failed.value.kind == "ConnectError"
    assert isinstance(failed.value.__cause__, ssl.SSLCertVerificationError)
