"""The choreography chaos run's seeded parts, without processes: the schedule replays from its
seed, the in-process fault hooks decide from the seed and the message alone, and the broker
proxy cuts its connections while new ones still get through."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import pytest

from repository_after.messaging.envelope import Message
from repository_after.messaging.faults import ENV, MessagingFaults, PoisonedMessage
from sagabank_tools.chaos.broker_proxy import BrokerProxy
from sagabank_tools.chaos.choreo_schedule import (
    CHOREOGRAPHY_FAMILIES,
    BrokerFamily,
    ChoreoSchedule,
    parse_choreography_families,
)

IDS = [f"chaos-7-{i:06d}" for i in range(500)]


def _shape(seed: int) -> tuple[object, ...]:
    schedule = ChoreoSchedule(seed, CHOREOGRAPHY_FAMILIES)
    points = tuple(schedule.points(f, 500) for f in BrokerFamily)
    return points, tuple(schedule.crashes()), tuple(schedule.poison(IDS))


def test_the_schedule_is_a_function_of_the_seed() -> None:
    assert _shape(7) == _shape(7)
    assert _shape(7) != _shape(8)
    _points, crashes, poison = _shape(7)
    assert len(crashes) == 3
    assert poison
    assert all(p in IDS for p in poison)


def test_a_family_that_is_off_never_fires() -> None:
    schedule = ChoreoSchedule(7, (BrokerFamily.CONNECTION_DROP,))
    assert schedule.points(BrokerFamily.KILL_SERVICE, 500) == ()
    assert schedule.points(BrokerFamily.CONNECTION_DROP, 500)
    assert schedule.crashes() == []
    assert schedule.poison(IDS) == []
    assert schedule.duplicate_rate == 0.0


def test_families_are_parsed_and_unknown_ones_refused() -> None:
    assert parse_choreography_families("poison, kill-service") == (
        BrokerFamily.KILL_SERVICE,
        BrokerFamily.POISON,
    )
    assert parse_choreography_families("credit-before") == (BrokerFamily.CREDIT_BEFORE,)
    assert parse_choreography_families("reserve-before", "order") == (BrokerFamily.RESERVE_BEFORE,)
    with pytest.raises(ValueError, match="credit-after"):  # no meaning in one transaction
        parse_choreography_families("credit-after")
    with pytest.raises(ValueError, match="reserve-before"):  # transfers reserve nothing
        parse_choreography_families("reserve-before")


def test_the_hooks_are_off_without_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV, raising=False)
    assert MessagingFaults.from_env() is None


def test_duplicates_are_decided_by_seed_and_message_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, json.dumps({"seed": 3, "duplicate_rate": 0.1}))
    faults = MessagingFaults.from_env()
    assert faults is not None
    chosen = [m for m in IDS if faults.duplicated(m)]
    assert chosen == [m for m in IDS if MessagingFaults(seed=3, duplicate_rate=0.1).duplicated(m)]
    assert 20 < len(chosen) < 80  # about a tenth of 500


def test_a_poisoned_saga_fails_its_handler_until_the_fix(tmp_path: Path) -> None:
    fixed = tmp_path / "fixed"
    faults = MessagingFaults(seed=1, poison=frozenset({"s-1"}), fixed=str(fixed))
    handler = faults.poisoning(lambda tx, message: {"handled": message.message_id})
    poison = Message("m-1", "call.accounts.transfer", {"saga_id": "s-1"})
    good = Message("m-2", "call.accounts.transfer", {"saga_id": "s-2"})
    assert handler(None, good) == {"handled": good.message_id}  # type: ignore[arg-type]
    with pytest.raises(PoisonedMessage):
        handler(None, poison)  # type: ignore[arg-type]
    fixed.write_text("fixed")
    assert handler(None, poison) == {"handled": poison.message_id}  # type: ignore[arg-type]


async def test_the_proxy_cuts_open_connections_and_takes_new_ones() -> None:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(1024):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    upstream = await asyncio.start_server(echo, "127.0.0.1", 0)
    proxy = BrokerProxy("127.0.0.1", int(upstream.sockets[0].getsockname()[1]))
    port = await proxy.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        assert proxy.cut() == 1
        assert await reader.read(1024) == b""  # the cut closed it
        reader2, writer2 = await asyncio.open_connection("127.0.0.1", port)
        writer2.write(b"again")
        assert await reader2.readexactly(5) == b"again"
        for opened in (writer, writer2):
            opened.close()
            with contextlib.suppress(ConnectionError):
                await opened.wait_closed()
    finally:
        await proxy.close()
        upstream.close()
        await upstream.wait_closed()


def test_the_cli_refuses_what_choreography_does_not_run() -> None:
    from typer.testing import CliRunner

    from repository_after.entrypoints.cli import app

    runner = CliRunner()
    unknown = runner.invoke(app, ["chaos", "--mode", "choreography", "--faults", "meteor"])
    assert unknown.exit_code == 2
    assert "not a choreography family of transfer: meteor" in unknown.output
    other = ["chaos", "--mode", "choreography", "--saga", "order", "--faults", "assign-before"]
    refused = runner.invoke(app, other)
    assert refused.exit_code == 2
    assert "assign-before" in refused.output  # (the box may wrap the sentence)
    server = ["chaos", "--mode", "choreography", "--database-url", "mysql://root@x/y"]
    on_server = runner.invoke(app, server)
    assert on_server.exit_code == 2
    assert "choreography runs on SQLite or PostgreSQL" in on_server.output
