"""`sagabank gc` purges the hosted participants' records too, on real files (and on one
PostgreSQL or MariaDB database): per service, with the account service's horizon and its
refusal below the retry horizon; tombstones and fences stay and keep refusing; the audits stay
clean; a saga still parked holds the cutoff back; `--participant NAME` purges a participant run
as its own process, and a database that does not exist is never created."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from repository_after.bootstrap import build_saga_log
from repository_after.config import Settings
from repository_after.domain.saga import EventKind, SagaEvent, SagaStatus
from repository_after.participant_kit import ParticipantService
from repository_after.services import inventory, orders

OLD = "2000-01-01T00:00:00.000000+00:00"
ORDER = {
    "customer": "acc-01",
    "merchant": "acc-02",
    "lines": [{"sku": "apple", "qty": 1}],
    "total": 10,
}
#: what stays of `fill`'s records after a purge of the old ones: the fences and the recent one
KEPT = {
    "inventory": {("release", "t-1", 200), ("release", "r-2", 200), ("reserve", "r-3", 200)},
    "orders": {("cancel", "s-2:create", 200)},
}


def sagabank(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SAGABANK_")}
    return subprocess.run(
        [sys.executable, "-m", "repository_after.entrypoints.cli", *args],
        env={**clean, **env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def _call(service: ParticipantService, op: str, key: str, body: Any) -> dict[str, Any]:
    return (await service.perform(op, key, service.parse(op, body))).json()


async def _fill(stock: ParticipantService, sales: ParticipantService) -> None:
    await stock.store.transaction(lambda tx: inventory.open_stock(tx, "apple", 10))
    one = {"lines": [{"sku": "apple", "qty": 1}]}
    await _call(stock, "reserve", "r-1", one)
    await _call(stock, "release", "t-1", None)  # tombstone
    await _call(stock, "reserve", "r-2", one)
    await _call(stock, "release", "r-2", None)  # an applied compensation: a fence
    await _call(sales, "create", "s-1:create", {**ORDER, "order_id": "o-1"})
    await _call(sales, "cancel", "s-2:create", None)  # tombstone
    await _call(sales, "create", "s-3:create", {**ORDER, "order_id": "o-3"})
    await _call(sales, "confirm", "s-3:confirm", {"order_id": "o-3"})
    for service in (stock, sales):
        ops = tuple(service.operations)
        sql = (
            "UPDATE participant_records SET created_at = ?"
            f" WHERE operation IN ({', '.join('?' for _ in ops)})"
        )
        await service.store.transaction(lambda tx, sql=sql, ops=ops: tx.execute(sql, (OLD, *ops)))
    await _call(stock, "reserve", "r-3", one)  # recent


async def _open_and(where: dict[str, Path | str], then: Any) -> Any:
    stock = inventory.open_inventory(where["inventory"])
    sales = orders.open_orders(where["orders"])
    try:
        return await then(stock, sales)
    finally:
        await stock.store.close()
        await sales.store.close()


def fill(where: dict[str, Path | str]) -> None:
    asyncio.run(_open_and(where, _fill))


async def _state(stock: ParticipantService, sales: ParticipantService) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for service, audit in ((stock, inventory.audit), (sales, orders.audit)):
        ops = tuple(service.operations)
        sql = (
            "SELECT operation, key, status_code FROM participant_records"
            f" WHERE operation IN ({', '.join('?' for _ in ops)})"
        )
        rows = await service.store.read(lambda tx, sql=sql, ops=ops: tx.execute(sql, ops))
        found[service.name] = {(str(o), str(k), int(s)) for o, k, s in rows}
        found[f"{service.name} audit"] = (await service.store.read(audit)).as_dict()
    found["late reserve"] = await _call(stock, "reserve", "t-1", {"lines": [ORDER["lines"][0]]})
    found["late create"] = await _call(sales, "create", "s-2:create", {**ORDER, "order_id": "o-2"})
    return found


def state(where: dict[str, Path | str]) -> dict[str, Any]:
    """Each service's records and audit, and what a late action under a tombstone gets."""
    return asyncio.run(_open_and(where, _state))


def places(env: dict[str, str]) -> dict[str, Path | str]:
    settings = Settings(**{k.removeprefix("SAGABANK_").lower(): v for k, v in env.items()})
    return {name: settings.participant_database(name) for name in ("inventory", "orders")}


def assert_purged_and_fenced(after: dict[str, Any]) -> None:
    assert after["inventory"] == KEPT["inventory"]
    assert after["orders"] == KEPT["orders"]
    assert after["inventory audit"]["ok"], after["inventory audit"]
    assert after["orders audit"]["ok"], after["orders audit"]
    assert after["late reserve"]["error"] == "transaction_compensated"
    assert after["late create"]["error"] == "transaction_compensated"


def test_gc_purges_each_hosted_participant_and_keeps_the_fences(tmp_path: Path) -> None:
    env = {"SAGABANK_DATABASE_URL": f"sqlite:///{tmp_path / 'sagabank.db'}"}
    where = places(env)
    assert where["inventory"] == tmp_path / "sagabank-inventory.db"
    fill(where)

    done = sagabank(env, "gc")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("purged 0 operation record(s) and 0 settled saga(s) older than")
    assert lines[1].startswith("inventory: purged 2 record(s) older than")
    assert lines[2].startswith("orders: purged 3 record(s) older than")
    assert_purged_and_fenced(state(where))
    again = sagabank(env, "gc")
    assert "inventory: purged 0 record(s)" in again.stdout


@pytest.mark.parametrize(
    ("args", "env_days"), [(("--retention-days", "0.0001"), None), ((), "0.0001")]
)
def test_gc_below_the_retry_horizon_is_refused_and_purges_nothing(
    tmp_path: Path, args: tuple[str, ...], env_days: str | None
) -> None:
    env = {"SAGABANK_DATABASE_URL": f"sqlite:///{tmp_path / 'sagabank.db'}"}
    where = places(env)
    fill(where)
    before = state(where)
    if env_days is not None:
        env["SAGABANK_RETENTION_DAYS"] = env_days
    refused = sagabank(env, "gc", *args)
    assert refused.returncode == 2
    assert "retry horizon" in refused.stdout
    after = state(where)
    assert (after["inventory"], after["orders"]) == (before["inventory"], before["orders"])
    assert len(after["inventory"]) == 5


def test_a_parked_saga_holds_the_participants_cutoff_back(tmp_path: Path) -> None:
    env = {"SAGABANK_DATABASE_URL": f"sqlite:///{tmp_path / 'sagabank.db'}"}
    where = places(env)
    fill(where)

    async def park() -> None:
        log = build_saga_log(env["SAGABANK_DATABASE_URL"])
        try:
            await log.create(
                saga_id="p-1",
                definition="order",
                definition_version=1,
                definition_hash="h",
                params={},
                events=[SagaEvent(EventKind.STARTED, at="1999-06-01T00:00:00.000000+00:00")],
                status=SagaStatus.FAILED_NEEDS_ATTENTION.value,
            )
        finally:
            await log.close()

    asyncio.run(park())
    held = sagabank(env, "gc")
    assert held.returncode == 0, held.stdout + held.stderr
    assert (
        "inventory: purged 0 record(s) older than 1999-05-31T00:00:00.000000+00:00 "
        "(held back by a saga not yet settled)"
    ) in held.stdout
    assert len(state(where)["inventory"]) == 5


def test_a_participant_run_alone_is_purged_with_its_own_settings(tmp_path: Path) -> None:
    # the settings of `sagabank serve --role inventory`: its own database, no account store
    elsewhere = tmp_path / "elsewhere"
    env = {
        "SAGABANK_DATABASE_URL": f"sqlite:///{elsewhere / 'sagabank.db'}",
        "SAGABANK_INVENTORY_DATABASE_URL": f"sqlite:///{tmp_path / 'inventory.db'}",
        "SAGABANK_ORDERS_DATABASE_URL": f"sqlite:///{tmp_path / 'orders.db'}",
    }
    where = places(env)
    assert where["inventory"] == tmp_path / "inventory.db"
    fill(where)

    done = sagabank(env, "gc", "--participant", "inventory")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[0].startswith("inventory: purged 2 record(s) older than")
    assert "operation record" not in done.stdout
    assert "orders" not in done.stdout
    assert not elsewhere.exists()  # neither the account store nor a saga log was opened
    after = state(where)
    assert after["inventory"] == KEPT["inventory"]
    assert len(after["orders"]) == 4  # not asked for: untouched

    unknown = sagabank(env, "gc", "--participant", "accounts")
    assert unknown.returncode == 2
    assert "no participant 'accounts'" in unknown.stdout


def test_gc_never_creates_a_participant_database(tmp_path: Path) -> None:
    env = {"SAGABANK_DATABASE_URL": f"sqlite:///{tmp_path / 'sagabank.db'}"}
    done = sagabank(env, "gc")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "inventory: no database with its records yet, nothing to purge" in done.stdout
    assert "orders: no database with its records yet, nothing to purge" in done.stdout
    assert sorted(p.name for p in tmp_path.glob("*-*.db")) == []


def test_gc_on_a_server_purges_each_participant_in_the_shared_database(server_url: str) -> None:
    env = {"SAGABANK_DATABASE_URL": server_url}
    where = places(env)
    assert where == {"inventory": server_url, "orders": server_url}
    fill(where)
    done = sagabank(env, "gc")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "inventory: purged 2 record(s)" in done.stdout
    assert "orders: purged 3 record(s)" in done.stdout
    assert_purged_and_fenced(state(where))


def test_gc_says_which_database_it_could_not_reach(server_url: str) -> None:
    missing = server_url.rsplit("/", 1)[0] + "/sagabank_gc_no_such_database"
    env = {"SAGABANK_DATABASE_URL": missing}
    engine = "mysql" if server_url.startswith("mysql://") else "postgres"
    for args in ((), ("--participant", "orders")):
        failed = sagabank(env, "gc", *args)
        assert failed.returncode == 1
        assert failed.stdout.startswith(f"storage unavailable: {engine}: ")
        assert "sagabank_gc_no_such_database" in failed.stdout
        assert "Traceback" not in failed.stdout + failed.stderr
