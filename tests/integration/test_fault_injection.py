"""`/credit` fault injection: seeded, mode before / after / mixed, never corrupting state."""

from __future__ import annotations

from pathlib import Path

from repository_after.service_layer.faults import FaultInjector, FaultMode, FaultPoint
from tests.conftest import accounts_settings, asgi_client


async def credit(client, tx: str, amount: int = 10):
    return await client.post(
        "/credit", json={"account_id": "acc-01", "amount": amount}, headers={"transaction-id": tx}
    )


async def test_mode_before_fails_without_changing_anything(tmp_path: Path) -> None:
    settings = accounts_settings(
        tmp_path, credit_failure_rate=1.0, demo_accounts=1, credit_failure_mode="before"
    )
    async for client in asgi_client(settings):
        for _ in range(3):
            r = await credit(client, "c1")
            assert r.status_code == 500
            assert r.json()["error"] == "injected_fault"
        void = await client.post("/void_credit", headers={"transaction-id": "c1"})
        assert void.json()["status"] == "voided"
        assert (await client.get("/accounts/acc-01")).json()["balance"] == 100_000


async def test_mode_after_lands_the_credit_once_however_often_retried(tmp_path: Path) -> None:
    settings = accounts_settings(
        tmp_path, credit_failure_rate=1.0, demo_accounts=1, credit_failure_mode="after"
    )
    async for client in asgi_client(settings):
        for _ in range(5):
            assert (await credit(client, "c1", 25)).status_code == 500
        assert (await client.get("/accounts/acc-01")).json()["balance"] == 100_025
        void = await client.post("/void_credit", headers={"transaction-id": "c1"})
        assert void.json()["status"] == "already_applied"
        assert (await client.get("/audit")).json()["applied_operations"] == 1


async def test_rate_zero_never_injects(tmp_path: Path) -> None:
    settings = accounts_settings(tmp_path, credit_failure_rate=0.0, demo_accounts=1)
    async for client in asgi_client(settings):
        codes = {(await credit(client, f"c{i}")).status_code for i in range(20)}
        assert codes == {200}


def draws(seed: int, mode: FaultMode) -> list[FaultPoint]:
    injector = FaultInjector(rate=0.3, mode=mode, seed=seed)
    return [injector.draw(f"t{i}") for i in range(200)]


def test_the_same_seed_replays_the_same_faults() -> None:
    assert draws(7, FaultMode.MIXED) == draws(7, FaultMode.MIXED)
    assert draws(7, FaultMode.MIXED) != draws(8, FaultMode.MIXED)


def test_the_rate_is_roughly_honoured_and_mixed_uses_both_points() -> None:
    points = draws(1, FaultMode.MIXED)
    faults = [p for p in points if p is not FaultPoint.NONE]
    assert 40 <= len(faults) <= 80
    assert {FaultPoint.BEFORE, FaultPoint.AFTER} <= set(faults)
    assert set(draws(1, FaultMode.AFTER)) == {FaultPoint.NONE, FaultPoint.AFTER}


async def test_faults_can_be_changed_at_run_time_with_the_admin_token(tmp_path: Path) -> None:
    settings = accounts_settings(tmp_path, demo_accounts=1, admin_token="tok")
    async for client in asgi_client(settings):
        body = {"rate": 1.0, "mode": "after", "seed": 3}
        assert (await client.put("/admin/faults", json=body)).status_code == 401
        auth = {"Authorization": "Bearer tok"}
        r = await client.put("/admin/faults", json=body, headers=auth)
        assert r.status_code == 200
        assert r.json()["mode"] == "after"
        assert (await credit(client, "c1")).status_code == 500
        assert (await client.get("/admin/faults", headers=auth)).json()["injected"] == {
            "before": 0,
            "after": 1,
        }
        bad = await client.put("/admin/faults", json={"rate": 2}, headers=auth)
        assert bad.status_code == 422
        assert (await client.get("/admin/faults", headers=auth)).json()["rate"] == 1.0
