"""The participant's HTTP client (httpx over its production transport) against real loopback
servers that answer from a script: connections are reused only when that is safe, and an answer
is never taken for another request's. These prove what a mock cannot: what happens on the
socket (late answers, reuse, interim answers, TLS)."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson
import pytest
import trustme

from repository_after.adapters.http_participant import HttpParticipant, build_transport
from repository_after.domain.saga import Outcome
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


def _participant(url: str, **options: Any) -> HttpParticipant:
    """Batching off: each call is one POST, on the production transport unless given one."""
    return HttpParticipant({"svc": url}, batching=False, **options)


async def _post(
    participant: HttpParticipant,
    operation: str = "debit",
    body: dict[str, Any] | None = None,
    *,
    tx: str = "tx-1",
    timeout: float = 2.0,
) -> Any:
    result = await participant.call(
        service="svc", operation=operation, transaction_id=tx, body=body or {}, timeout=timeout
    )
    return result


def _answered(result: Any) -> tuple[int, object]:
    assert result.outcome is Outcome.SUCCEEDED, result
    return result.status_code, result.body


async def test_an_answer_that_arrives_on_an_idle_connection_is_never_taken_for_the_next() -> None:
    """A second, unasked answer that arrives while the connection sits idle in the pool (a
    misbehaving server, a proxy's 408 before it closes) must not be read as the next request's
    answer: the connection is not reused."""
    first_done, stray_sent = asyncio.Event(), asyncio.Event()

    async def answers_twice(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        n = 0
        while True:
            await _read_request(reader)
            n += 1
            writer.write(_answer(b'{"n":%d}' % n))
            await writer.drain()
            if n == 1:  # once the client is done with the first answer: a second one
                await first_done.wait()
                writer.write(_answer(b'{"n":"stray"}'))
                await writer.drain()
                stray_sent.set()

    server = Server(answers_twice)
    async with server as url:
        participant = _participant(url)
        first = await _post(participant, tx="tx-1")
        first_done.set()  # its connection is back in the pool, idle
        await stray_sent.wait()
        # On loopback the stray bytes are in the client's socket once the server's drain
        # returned; a few turns of the loop let the idle connection read them.
        for _ in range(10):
            await asyncio.sleep(0)
        second = await _post(participant, "credit", tx="tx-2")
        await participant.close()
    assert _answered(first) == (200, {"n": 1})
    assert _answered(second) == (200, {"n": 1})  # a new connection's first answer
    assert server.connections == 2


async def test_a_post_carries_its_headers_and_body_and_reads_the_answer() -> None:
    seen: list[bytes] = []
    async with Server(_keep_alive([_answer()], seen)) as url:
        participant = _participant(url)
        result = await _post(participant, body={"a": 1})
        await participant.close()
    assert _answered(result) == (200, {"status": "applied"})
    request = seen[0]
    assert request.startswith(b"POST /debit HTTP/1.1\r\n")
    assert b"\r\ntransaction-id: tx-1\r\n" in request.lower()
    assert b"\r\ncontent-type: application/json\r\n" in request.lower()
    assert request.endswith(b'\r\n\r\n{"a":1}')


async def test_a_kept_alive_connection_is_reused() -> None:
    server = Server(_keep_alive([_answer(b'{"n":1}'), _answer(b'{"n":2}')]))
    async with server as url:
        participant = _participant(url)
        first = await _post(participant)
        second = await _post(participant)
        await participant.close()
    assert [first.body, second.body] == [{"n": 1}, {"n": 2}]
    assert server.connections == 1


async def test_connection_close_is_honoured() -> None:
    answers = [_answer(b'{"n":1}', head=b"connection: close\r\n"), _answer(b'{"n":2}')]
    server = Server(_keep_alive(answers))
    async with server as url:
        participant = _participant(url)
        await _post(participant)
        second = await _post(participant)
        await participant.close()
    assert _answered(second) == (200, {"n": 2})
    assert server.connections == 2


async def test_an_idle_connection_past_its_keepalive_is_not_reused() -> None:
    server = Server(_keep_alive([_answer(), _answer()]))
    async with server as url:
        # every idle connection is already too old
        participant = _participant(url, transport=build_transport(keepalive=0.0))
        await _post(participant)
        await _post(participant)
        await participant.close()
    assert server.connections == 2


def _late_for_first() -> tuple[Handler, asyncio.Event]:
    """Answers {"n": "first"} only once released, then waits for the client to close; any
    other request is answered at once."""
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, body = await _read_request(reader)
        if orjson.loads(body) == {"n": "first"}:
            await release.wait()
            writer.write(_answer(b'{"for":"first"}'))
            await writer.drain()
            await reader.read()  # until the client closes
            return
        writer.write(_answer(b'{"for":"second"}'))
        await writer.drain()

    return handler, release


async def test_a_late_answer_is_never_taken_for_the_next_requests() -> None:
    """The first request times out; its answer arrives later. The second request must get its
    own answer, on a new connection, never the first one's."""
    handler, release = _late_for_first()
    server = Server(handler)
    async with server as url:
        participant = _participant(url)
        first = await _post(participant, "credit", {"n": "first"}, timeout=0.2)
        release.set()
        second = await _post(participant, "credit", {"n": "second"})
        await participant.close()
    assert (first.outcome, first.error) == (Outcome.UNKNOWN, "timeout")
    assert _answered(second) == (200, {"for": "second"})
    assert server.connections == 2


async def test_a_cancelled_callers_late_answer_is_never_taken_for_the_next_requests() -> None:
    handler, release = _late_for_first()
    server = Server(handler)
    async with server as url:
        participant = _participant(url)
        first = asyncio.create_task(_post(participant, "credit", {"n": "first"}, timeout=5))
        while server.connections == 0:  # until the first request is on its connection
            await asyncio.sleep(0.001)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        release.set()
        second = await _post(participant, "credit", {"n": "second"})
        await participant.close()
    assert _answered(second) == (200, {"for": "second"})
    assert server.connections == 2


async def test_bytes_beyond_the_answer_close_the_connection() -> None:
    """An answer followed by a second, unasked one: the connection is not reused."""
    answers = [_answer(b'{"n":1}', extra=_answer(b'{"n":"stray"}')), _answer(b'{"n":2}')]
    server = Server(_keep_alive(answers))
    async with server as url:
        participant = _participant(url)
        first = await _post(participant)
        second = await _post(participant)
        await participant.close()
    assert (first.body, second.body) == ({"n": 1}, {"n": 2})
    assert server.connections == 2


async def test_an_interim_answer_is_skipped_for_the_real_one() -> None:
    interim = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\n"
    server = Server(_keep_alive([interim + _answer(b'{"n":1}'), _answer(b'{"n":2}')]))
    async with server as url:
        participant = _participant(url)
        first = await _post(participant, "debit")
        second = await _post(participant, "credit")
        await participant.close()
    assert (_answered(first), _answered(second)) == ((200, {"n": 1}), (200, {"n": 2}))
    assert server.connections == 1  # the connection stayed in step with its answers


async def test_a_chunked_answer_is_read_whole() -> None:
    chunked = (
        b'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{"n":\r\n2\r\n1}\r\n0\r\n\r\n'
    )
    async with Server(_keep_alive([chunked])) as url:
        participant = _participant(url)
        result = await _post(participant)
        await participant.close()
    assert _answered(result) == (200, {"n": 1})


async def _failure(handler: Handler, timeout: float = 2.0) -> str:
    async with Server(handler) as url:
        participant = _participant(url)
        try:
            result = await _post(participant, timeout=timeout)
        finally:
            await participant.close()
    assert result.outcome is Outcome.UNKNOWN
    assert result.status_code is None
    return str(result.error)


async def test_a_peer_closing_before_answering_is_server_disconnected() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)

    assert await _failure(hang_up) == "transport: ServerDisconnected"


async def test_an_answer_that_breaks_off_is_a_read_error() -> None:
    async def broken(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"half')
        await writer.drain()

    assert await _failure(broken) == "transport: ReadError"


async def test_garbage_is_a_transport_error() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"SMTP ready\r\n\r\n")
        await writer.drain()
        await reader.read()

    assert await _failure(garbage) == "transport: ReadError"


async def test_an_answer_too_large_is_a_read_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("repository_after.adapters.http_participant.MAX_BODY_BYTES", 10)
    answer = _answer(b'{"x":"' + b"y" * 20 + b'"}')
    assert await _failure(_keep_alive([answer])) == "transport: ReadError"


async def test_an_answer_larger_than_one_read_is_read_whole() -> None:
    # The transport hands the body over in pieces of at most 16 KiB: every piece counts.
    body = orjson.dumps({"pad": "y" * 100_000})
    async with Server(_keep_alive([_answer(body)])) as url:
        participant = _participant(url)
        result = await _post(participant)
        await participant.close()
    assert _answered(result) == (200, orjson.loads(body))


@pytest.mark.parametrize(("over", "read"), [(0, True), (1, False)], ids=["at", "one-over"])
async def test_the_size_limit_reads_an_answer_of_exactly_that_size_and_no_more(
    monkeypatch: pytest.MonkeyPatch, over: int, read: bool
) -> None:
    body = orjson.dumps({"pad": "y" * 40_000})  # several reads long
    monkeypatch.setattr(
        "repository_after.adapters.http_participant.MAX_BODY_BYTES", len(body) - over
    )
    async with Server(_keep_alive([_answer(body)])) as url:
        participant = _participant(url)
        result = await _post(participant)
        await participant.close()
    if read:
        assert _answered(result) == (200, orjson.loads(body))
    else:
        assert (result.outcome, result.error) == (Outcome.UNKNOWN, "transport: ReadError")


async def test_the_production_participant_opens_at_most_64_connections() -> None:
    # Batching off, every call is its own exchange: the pool, not the batching, bounds them.
    held: list[asyncio.StreamWriter] = []
    release = asyncio.Event()

    async def holds(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        held.append(writer)
        await release.wait()
        writer.write(_answer())
        await writer.drain()

    server = Server(holds)
    async with server as url:
        participant = _participant(url)  # the default pool, as bootstrap makes it
        first = [
            asyncio.create_task(_post(participant, tx=f"tx-{i}", timeout=10)) for i in range(64)
        ]
        async with asyncio.timeout(5):
            while len(held) < 64:  # every one of them has a connection, and is held
                await asyncio.sleep(0.001)
        late = await _post(participant, tx="tx-late", timeout=0.3)  # waits for a free one
        release.set()
        answered = [await t for t in first]
        await participant.close()
    assert (late.outcome, late.error) == (Outcome.UNKNOWN, "timeout")
    assert server.connections == 64  # the 65th never had a connection of its own
    assert all(_answered(r) == (200, {"status": "applied"}) for r in answered)


async def test_a_proxy_named_in_the_environment_is_not_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A proxy from the environment would see every request, the service credential included.
    proxied: list[bytes] = []
    proxy = Server(_keep_alive([_answer(b'{"via":"proxy"}')], proxied))
    service = Server(_keep_alive([_answer(b'{"via":"service"}')]))
    async with proxy as proxy_url, service as url:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy_url)
            monkeypatch.setenv(name.lower(), proxy_url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        participant = _participant(url, headers={"authorization": "Bearer s3cret"})
        result = await _post(participant)
        await participant.close()
    assert _answered(result) == (200, {"via": "service"})
    assert (proxy.connections, proxied) == (0, [])


async def test_a_refused_connection_is_a_connect_error() -> None:
    participant = _participant(f"http://127.0.0.1:{free_port()}")
    result = await _post(participant)
    await participant.close()
    assert (result.outcome, result.error) == (Outcome.UNKNOWN, "transport: ConnectError")


async def test_waiting_for_a_free_connection_counts_against_the_timeout() -> None:
    release = asyncio.Event()

    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        await release.wait()
        writer.write(_answer())
        await writer.drain()

    server = Server(slow)
    async with server as url:
        participant = _participant(url, max_connections=1)
        first = asyncio.create_task(_post(participant, timeout=5))
        while server.connections == 0:  # the first takes the only connection
            await asyncio.sleep(0.001)
        second = await _post(participant, timeout=0.2)
        release.set()
        assert _answered(await first) == (200, {"status": "applied"})
        await participant.close()
    assert (second.outcome, second.error) == (Outcome.UNKNOWN, "timeout")
    assert server.connections == 1  # the second never had a connection of its own


@pytest.mark.parametrize("tx", ["a\r\nx-evil: 1", "a\nx-evil: 1"])
async def test_a_header_that_would_break_the_request_is_refused(tx: str) -> None:
    seen: list[bytes] = []
    async with Server(_keep_alive([_answer()], seen)) as url:
        participant = _participant(url)
        with pytest.raises(ValueError, match="header injection"):
            await _post(participant, tx=tx)
        await participant.close()
    assert seen == []  # nothing was sent


@pytest.mark.parametrize("url", ["ftp://example/x", "http:///nohost", "localhost:80/x"])
def test_a_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="not an http"):
        _participant(url)


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
        participant = _participant(url, transport=build_transport(verify=trusting))
        first = await _post(participant, "debit")
        second = await _post(participant, "credit")
        await participant.close()
    assert url.startswith("https://")
    assert (_answered(first), _answered(second)) == ((200, {"n": 1}), (200, {"n": 2}))
    assert server.connections == 1


async def test_https_to_a_server_nobody_vouches_for_is_a_connect_error(ca: trustme.CA) -> None:
    # No transport given: the production one, on the system's trust store, which does not know
    # this test's CA. The handshake fails, so no request reaches the server.
    seen: list[bytes] = []
    server = Server(_keep_alive([_answer()], seen), tls=_tls_server_context(ca))
    async with server as url:
        participant = _participant(url)
        result = await _post(participant)
        await participant.close()
    assert (result.outcome, result.error) == (Outcome.UNKNOWN, "transport: ConnectError")
    assert seen == []


async def test_the_production_transport_verifies_against_the_trust_store() -> None:
    transport = build_transport()
    assert isinstance(transport, httpx.AsyncBaseTransport)
    context = transport.ssl_context  # type: ignore[attr-defined]
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname
