"""The end of a chaos run, over HTTP: wait for every saga to settle, retry the parked ones as an
operator, and read what the run left behind (late deliveries, refusals, recoveries).

A saga is settled when it is at rest (`AT_REST`: terminal, or parked for an operator). Polling
stops at the deadline, so a saga stuck in between is reported as not terminal, not waited for.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx

from repository_after.domain.saga import AT_REST, SagaStatus
from sagabank_tools.chaos.proxy import LateDelivery

Views = dict[str, dict[str, Any]]  # transaction id -> the orchestrator's last JSON view


async def settle(
    url: str, ids: list[str], path: Callable[[str], str], deadline: float, views: Views
) -> dict[str, str]:
    """Poll each saga at `path(id)` until it is settled (or the deadline passes); keeps its
    last view."""
    statuses: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=url, timeout=10.0) as client:
        while True:
            for tx_id in ids:
                if statuses.get(tx_id) not in AT_REST:
                    views[tx_id] = (await client.get(path(tx_id))).json()
                    statuses[tx_id] = views[tx_id]["status"]
            if all(s in AT_REST for s in statuses.values()) or time.monotonic() > deadline:
                return statuses
            await asyncio.sleep(0.2)  # polling a remote state for recovery to finish


async def retry_parked(url: str, statuses: dict[str, str], path: Callable[[str], str]) -> list[str]:
    """`POST path(id)` for every parked saga, as an operator would; the ids retried."""
    parked = [t for t, s in statuses.items() if s == SagaStatus.FAILED_NEEDS_ATTENTION]
    async with httpx.AsyncClient(base_url=url, timeout=120.0) as client:
        for tx_id in parked:
            (await client.post(path(tx_id))).raise_for_status()
    return parked


async def refuses_strangers(service: httpx.AsyncClient, paths: Iterable[str]) -> bool:
    """Does the account service's process refuse each call at `paths` without the service
    token? Each is an operation that leaves only a tombstone, under an id no saga uses."""
    for path in paths:
        probe = await service.post(path, headers={"transaction-id": "chaos-token-probe"})
        if probe.status_code != 401:
            return False
    return True


def met(late: LateDelivery) -> str:
    """What a late request met at the account service."""
    if late.error:
        return late.error
    if late.replayed:
        return "replayed"
    return "applied" if 200 <= late.status < 300 else f"http_{late.status}"


def refusals(views: Views) -> dict[str, int]:
    """The business refusals the sagas met (`insufficient_funds`, `out_of_stock`), by error."""
    return dict(
        Counter(
            str(attempt["error"])
            for view in views.values()
            for attempt in view.get("attempts", ())
            if attempt["outcome"] == "rejected"
        )
    )


def recovered(log: Path) -> int:
    text = log.read_text() if log.exists() else ""
    return sum(map(int, re.findall(r"recovery: (\d+) unsettled", text)))
