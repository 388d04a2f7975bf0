"""Group commit in the participant kit's SQLite store (real files): concurrent calls share one
COMMIT, yet each keeps the kit's guarantees alone: a call that raises undoes only its own writes,
a refusal's savepoint undoes only its handler's, and an answer is never given before its COMMIT.
That last one two ways: in process, another connection must see a call's record the moment its
answer arrives (an answer sent before the COMMIT, whose fsync outlasts the check, fails it); and a
SIGKILLed inventory process, restarted, must replay every answer it gave.

COMMITs are counted with SQLite's statement trace on the store's connection, not timed. Calls
started by one `asyncio.gather` all queue before the first group starts (the engine starts it
from a loop callback, which runs after every task's first step), so they share one COMMIT."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from repository_after.participant_kit import ParticipantService, SqliteParticipantStore, Tx
from repository_after.service_layer.ports import StorageError
from repository_after.services import inventory
from tests.conftest import Launcher
from tests.unit.test_participant_kit import body, build

Statements = list[str]


def traced(store: Any) -> Statements:
    """Every statement the store's connection runs from now on (the engine's own connection:
    no public seam hands it out, by design)."""
    statements: Statements = []
    store._db._conn.set_trace_callback(statements.append)
    return statements


def commits(statements: Statements) -> int:
    return statements.count("COMMIT")


def committed(path: Path, sql: str) -> list[tuple[Any, ...]]:
    """What another connection sees: only what was committed."""
    with sqlite3.connect(path) as other:
        return other.execute(sql).fetchall()


@pytest.fixture
async def counter(tmp_path: Path) -> AsyncIterator[ParticipantService]:
    service = build(tmp_path / "counter.db")
    yield service
    await service.store.close()


async def test_concurrent_reserves_share_commits_and_each_is_committed(tmp_path: Path) -> None:
    service = inventory.open_inventory(tmp_path / "inventory.db")
    try:
        await service.store.transaction(lambda tx: inventory.open_stock(tx, "apple", 1_000))
        statements = traced(service.store)
        calls = 40
        answers = await asyncio.gather(
            *(
                service.perform("reserve", f"s-{i}:reserve", _reserve(qty=1 + i % 3))
                for i in range(calls)
            )
        )
        assert [a.json()["status"] for a in answers] == ["reserved"] * calls
        assert 1 <= commits(statements) < calls  # fewer COMMITs (fsyncs) than calls
    finally:
        await service.store.close()
    reserved = sum(1 + i % 3 for i in range(calls))
    path = tmp_path / "inventory.db"
    assert committed(path, "SELECT available, reserved FROM stock") == [
        (1_000 - reserved, reserved)
    ]
    assert committed(path, "SELECT COUNT(*) FROM participant_records") == [(calls,)]


async def test_every_answer_is_committed_when_it_arrives(tmp_path: Path) -> None:
    path = tmp_path / "inventory.db"
    service = inventory.open_inventory(path)
    unseen: list[str] = []

    async def reserve(key: str) -> None:
        answer = await service.perform("reserve", key, _reserve(qty=1))
        assert answer.status_code == 200
        # at once, before anything else runs on this loop: another connection sees the record
        sql = f"SELECT 1 FROM participant_records WHERE key = '{key}'"
        if not committed(path, sql):
            unseen.append(key)

    try:
        await service.store.transaction(lambda tx: inventory.open_stock(tx, "apple", 1_000))
        statements = traced(service.store)
        await asyncio.gather(*(reserve(f"s-{i}:reserve") for i in range(64)))
        assert commits(statements) < 64
    finally:
        await service.store.close()
    assert unseen == []


async def test_a_raising_call_in_a_group_undoes_only_its_own_writes(counter, tmp_path) -> None:
    statements = traced(counter.store)
    ok, boom, refused, ok_too = await asyncio.gather(
        counter.perform("credit", "k-ok", body(5)),
        counter.perform("credit", "k-boom", body(666)),  # raises: 500, nothing kept
        counter.perform("credit", "k-refused", body(2000)),  # refused after a write: 409
        counter.perform("credit", "k-ok-too", body(7)),
    )
    assert commits(statements) == 1  # the four calls were one group
    assert (ok.status_code, ok_too.status_code) == (200, 200)
    assert (boom.status_code, boom.json()["error"]) == (500, "internal_error")
    assert (refused.status_code, refused.json()["error"]) == (409, "too_much")
    assert ok_too.json()["value"] == 12  # saw the earlier call of its group, not the undone ones
    path = tmp_path / "counter.db"
    assert dict(committed(path, "SELECT key, status_code FROM participant_records")) == {
        "k-ok": 200,
        "k-refused": 409,
        "k-ok-too": 200,
    }
    assert committed(path, "SELECT value FROM counters WHERE name = 'c'") == [(12,)]
    # every handler wrote one row first: only the two applied calls' rows are left
    assert committed(path, "SELECT COUNT(*) FROM handler_calls") == [(2,)]
    # the raising call decides afresh later (never recorded), in a group of its own
    again = await counter.perform("credit", "k-boom", body(3))
    assert (again.status_code, again.replayed, again.json()["value"]) == (200, False, 15)


def nested(name: str, *, fail: bool) -> Callable[[Tx], list[int]]:
    """Writes at depth 0, 1 and 2 of the kit's savepoints; the innermost always raises and is
    caught (its write undone); `fail` then raises out of the whole call."""

    def work(tx: Tx) -> list[int]:
        depths = []
        tx.execute("INSERT INTO marks (owner, depth) VALUES (?, 0)", (name,))
        with tx.savepoint():
            tx.execute("INSERT INTO marks (owner, depth) VALUES (?, 1)", (name,))
            try:
                with tx.savepoint():
                    tx.execute("INSERT INTO marks (owner, depth) VALUES (?, 2)", (name,))
                    raise LookupError("undo the innermost")
            except LookupError:
                depths.append(2)
        if fail:
            raise RuntimeError(f"{name} fails")
        return depths

    return work


async def test_the_kit_savepoints_nest_per_call_inside_a_shared_group(tmp_path: Path) -> None:
    path = tmp_path / "marks.db"
    store = SqliteParticipantStore(
        path, schema=("CREATE TABLE marks (owner TEXT NOT NULL, depth INTEGER NOT NULL)",)
    )
    statements = traced(store)
    try:
        outcomes = await asyncio.gather(
            store.transaction(nested("a", fail=False)),
            store.transaction(nested("b", fail=True)),
            store.transaction(nested("c", fail=False)),
            return_exceptions=True,
        )
    finally:
        await store.close()
    assert outcomes[0] == outcomes[2] == [2]
    assert isinstance(outcomes[1], RuntimeError)
    assert commits(statements) == 1
    # every call named its savepoints from depth 1 again, inside the engine's own per-call one
    assert statements.count("SAVEPOINT kit_2") >= 3
    assert sorted(committed(path, "SELECT owner, depth FROM marks")) == [
        ("a", 0),
        ("a", 1),
        ("c", 0),
        ("c", 1),
    ]


async def test_reads_in_a_group_see_its_earlier_writes_only_once_committed(counter) -> None:
    statements = traced(counter.store)
    credited, seen = await asyncio.gather(
        counter.perform("credit", "k1", body(4)),
        counter.store.read(lambda tx: tx.execute("SELECT value FROM counters")),
    )
    assert commits(statements) == 1
    assert (credited.status_code, seen) == (200, [(4,)])


async def test_a_closed_store_answers_storage_unavailable(tmp_path: Path) -> None:
    service = build(tmp_path / "c.db")
    await service.store.close()
    await service.store.close()  # twice is fine
    answer = await service.perform("credit", "k1", body(1))  # not queued forever
    assert (answer.status_code, answer.json()["error"]) == (503, "storage_unavailable")


def test_a_bad_schema_leaves_no_thread_behind(tmp_path: Path) -> None:
    before = set(threading.enumerate())
    with pytest.raises(StorageError, match="sqlite"):
        SqliteParticipantStore(tmp_path / "x.db", schema=("CREATE TABLE oops (",))
    assert [t.name for t in set(threading.enumerate()) - before] == []


async def test_answers_given_by_a_sigkilled_inventory_are_all_replayed_after_restart(
    launch: Launcher,
) -> None:
    stock = launch(role="inventory", name="inv")
    httpx.post(f"{stock.url}/stock", json={"sku": "apple", "qty": 10_000}).raise_for_status()
    answered: dict[str, bytes] = {}
    kill_after, calls = 20, 300
    gate = asyncio.Semaphore(32)

    async def reserve(client: httpx.AsyncClient, i: int) -> None:
        key = f"s-{i}:reserve"
        async with gate:
            try:
                r = await client.post("/reserve", json=_LINES, headers={"transaction-id": key})
            except httpx.TransportError:
                return  # in flight when the process died: either outcome is allowed
        assert r.status_code == 200, r.text
        answered[key] = r.content
        if len(answered) == kill_after:
            stock.kill()  # with calls still queued in the store's next group

    async with httpx.AsyncClient(base_url=stock.url, timeout=10) as client:
        await asyncio.gather(*(reserve(client, i) for i in range(calls)))
    assert kill_after <= len(answered) < calls  # the kill came with calls unanswered

    again = launch(role="inventory", name="inv")
    with httpx.Client(base_url=again.url, timeout=10) as client:
        for key, content in answered.items():
            replay = client.post("/reserve", json=_LINES, headers={"transaction-id": key})
            assert replay.headers.get("idempotent-replayed") == "true", key
            assert replay.content == content
        assert client.get("/audit").json()["ok"]


_LINES = {"lines": [{"sku": "apple", "qty": 1}]}


def _reserve(*, qty: int) -> inventory.ReserveIn:
    return inventory.ReserveIn.model_validate({"lines": [{"sku": "apple", "qty": qty}]})
