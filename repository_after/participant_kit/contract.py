"""The participant contract: checks any saga participant can run against itself over HTTP.

Each check is a plain `async def check(client, description)`: `client` is an `httpx.AsyncClient`
whose base URL is the participant (an ASGI transport or a real server) and which sends no
credential of its own; `description` (`Contract`) says which actions the service has, a valid
body for each, which have compensations and settlements, and the service token if one is set.
Each check uses fresh keys, so the checks can run in any order against one running service, and
raises `ContractViolation` (an `AssertionError`) naming the rule broken.

The rules (what the orchestrator's client relies on; docs/participant-kit.md):
- a repeated call replays its first answer, byte for byte, with `Idempotent-Replayed: true`;
- the same key with a different request is 422 `idempotency_key_reused`;
- a compensation before its action answers `nothing_to_compensate` and fences the late action
  (409); a settlement before its action answers `voided` and fences it too;
- a compensation after its action runs and answers its own word; a settlement after it
  answers `already_applied`;
- a definite refusal is recorded: the same call replays it;
- an item of `/batch` answers what its single endpoint answers (each way round);
- with a token set, every operation and `/batch` need it (401 `unauthorized`, nothing recorded);
- bad input is 422 and records nothing (the same key then works).

The words are the kit's, which are the account service's too (`nothing_to_compensate`,
`voided`, `already_applied`, `transaction_compensated`, `transaction_voided`); a service with
other words says so in its `Contract`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson

from repository_after.participant_kit.contract_calls import (
    PER_KEY,
    Body,
    Contract,
    ContractAction,
    ContractViolation,
    applied,
    call,
    error_of,
    expect,
    fill,
    headers_for,
    new_key,
    replayed,
    status_of,
)

__all__ = ["CHECKS", "PER_KEY", "Contract", "ContractAction", "ContractViolation", "run_contract"]


async def check_replay(client: httpx.AsyncClient, contract: Contract) -> None:
    """A repeated call replays the first answer byte for byte, marked replayed."""
    for action in contract.actions:
        key = new_key(contract, action.name)
        first = await applied(client, contract, action, key)
        again = await call(client, contract, action.name, key, action.body)
        expect(again.status_code == first.status_code, f"{action.name} replays its status", again)
        expect(again.content == first.content, f"{action.name} replays the same bytes", again)
        expect(replayed(again), f"a repeated {action.name} says Idempotent-Replayed", again)


async def check_key_reuse(client: httpx.AsyncClient, contract: Contract) -> None:
    """The same key with a different request is 422 idempotency_key_reused; the first stands."""
    for action in contract.actions:
        key = new_key(contract, action.name)
        first = await applied(client, contract, action, key)
        other = await call(client, contract, action.name, key, action.other_body)
        expect(other.status_code == 422, f"{action.name}: key reuse is 422", other)
        expect(error_of(other) == "idempotency_key_reused", "key reuse is named", other)
        again = await call(client, contract, action.name, key, action.body)
        expect(again.content == first.content, "the first request still replays", again)


async def check_compensation_first(client: httpx.AsyncClient, contract: Contract) -> None:
    """A compensation before its action leaves a tombstone; the late action is refused (409)."""
    for action in contract.actions:
        if action.compensation is None:
            continue
        key = new_key(contract, action.name)
        comp = await call(client, contract, action.compensation, key, action.body)
        expect(comp.status_code == 200, f"{action.compensation} first is 200", comp)
        expect(status_of(comp) == contract.nothing_to_compensate, "it is a tombstone", comp)
        late = await call(client, contract, action.name, key, action.body)
        expect(late.status_code == 409, f"a late {action.name} is refused (409)", late)
        expect(error_of(late) == contract.compensated_code, "the refusal is named", late)
        again = await call(client, contract, action.compensation, key, action.body)
        expect(again.content == comp.content and replayed(again), "the tombstone replays", again)


async def check_settlement_first(client: httpx.AsyncClient, contract: Contract) -> None:
    """A settlement before its action answers `voided`; the late action is refused (409)."""
    for action in contract.actions:
        if action.settlement is None:
            continue
        key = new_key(contract, action.name)
        void = await call(client, contract, action.settlement, key, action.body)
        expect(void.status_code == 200, f"{action.settlement} first is 200", void)
        expect(status_of(void) == contract.voided, "it answers voided", void)
        late = await call(client, contract, action.name, key, action.body)
        expect(late.status_code == 409, f"a late {action.name} is refused (409)", late)
        expect(error_of(late) == contract.voided_code, "the refusal is named", late)


async def check_compensation_after_action(client: httpx.AsyncClient, contract: Contract) -> None:
    """A compensation after its action runs once and answers its own word; the action then
    still replays its first answer (it is not applied again)."""
    for action in contract.actions:
        if action.compensation is None:
            continue
        key = new_key(contract, action.name)
        first = await applied(client, contract, action, key)
        comp = await call(client, contract, action.compensation, key, action.body)
        expect(comp.status_code == 200, f"{action.compensation} after the action is 200", comp)
        word = status_of(comp)
        expect(word != contract.nothing_to_compensate, "it is no tombstone", comp)
        if action.compensated is not None:
            expect(word == action.compensated, f"it answers {action.compensated!r}", comp)
        again = await call(client, contract, action.compensation, key, action.body)
        expect(again.content == comp.content and replayed(again), "it replays", again)
        late = await call(client, contract, action.name, key, action.body)
        expect(late.content == first.content and replayed(late), "the action replays", late)


async def check_settlement_after_action(client: httpx.AsyncClient, contract: Contract) -> None:
    """A settlement after its action answers `already_applied`."""
    for action in contract.actions:
        if action.settlement is None:
            continue
        key = new_key(contract, action.name)
        await applied(client, contract, action, key)
        settle = await call(client, contract, action.settlement, key, action.body)
        expect(settle.status_code == 200, f"{action.settlement} after the action is 200", settle)
        expect(status_of(settle) == contract.already_applied, "it says already_applied", settle)


async def check_refusal_recorded(client: httpx.AsyncClient, contract: Contract) -> None:
    """A definite refusal is recorded: the same call replays it, byte for byte."""
    for action in contract.actions:
        if action.refused_body is None:
            continue
        key = new_key(contract, action.name)
        refused = await call(client, contract, action.name, key, action.refused_body)
        expect(400 <= refused.status_code < 500, f"{action.name} refuses (4xx)", refused)
        expect(refused.status_code not in (408, 422, 429), "a definite business refusal", refused)
        expect(isinstance(error_of(refused), str), "the refusal names its code", refused)
        again = await call(client, contract, action.name, key, action.refused_body)
        expect(again.status_code == refused.status_code, "the refusal replays", again)
        expect(again.content == refused.content and replayed(again), "byte for byte", again)


async def _batch(
    client: httpx.AsyncClient,
    contract: Contract,
    items: list[dict[str, Any]],
    *,
    token: bool = True,
) -> httpx.Response:
    return await client.post(
        contract.batch_path, headers=headers_for(contract, token=token), json={"operations": items}
    )


def _item(operation: str, key: str, body: Body | None) -> dict[str, Any]:
    return {"operation": operation, "transaction_id": key, **(fill(body, key) or {})}


async def check_batch_matches_single(client: httpx.AsyncClient, contract: Contract) -> None:
    """An item of /batch answers what its single endpoint answers, either one first."""
    items, singles = [], []
    for action in contract.actions:
        items.append((action.name, new_key(contract, action.name), action.body))
        if action.refused_body is not None:
            items.append((action.name, new_key(contract, action.name), action.refused_body))
        if action.compensation is not None:
            items.append((action.compensation, new_key(contract, action.name), action.body))
        singles.append((action.name, new_key(contract, action.name), action.body))
    response = await _batch(client, contract, [_item(*i) for i in items])
    expect(response.status_code == 200, "a valid batch is 200", response)
    results = response.json()["results"]
    expect(len(results) == len(items), "one result per item, in order", response)
    for (operation, key, body), result in zip(items, results, strict=True):
        expect(result["replayed"] is False, f"a first {operation} in a batch is not replayed")
        single = await call(client, contract, operation, key, body)
        expect(replayed(single), f"the single {operation} replays the batch's item", single)
        expect(single.status_code == result["status_code"], "the same status", single)
        expect(single.json() == result["body"], "the same body", single)
    for operation, key, body in singles:
        single = await call(client, contract, operation, key, body)
        response = await _batch(client, contract, [_item(operation, key, body)])
        expect(response.status_code == 200, "a valid batch is 200", response)
        (result,) = response.json()["results"]
        expect(result["replayed"] is True, f"a batched {operation} replays the single call")
        expect(result["status_code"] == single.status_code, "the same status")
        expect(result["body"] == single.json(), "the same body")
        expect(orjson.dumps(result["body"]) == orjson.dumps(single.json()), "the same bytes")


def _operations(contract: Contract) -> list[tuple[str, ContractAction]]:
    ops = []
    for action in contract.actions:
        ops.append((action.name, action))
        if action.compensation is not None:
            ops.append((action.compensation, action))
        if action.settlement is not None:
            ops.append((action.settlement, action))
    return ops


async def check_token_required(client: httpx.AsyncClient, contract: Contract) -> None:
    """With a token set, every operation and /batch refuse a call without it (401), and record
    nothing: the same key then runs afresh. Without a token set, nothing to check."""
    if contract.token is None:
        return
    wrong = {"Authorization": "Bearer not-the-token"}
    for operation, action in _operations(contract):
        key = new_key(contract, operation)
        for headers in ({}, wrong, {"Authorization": contract.token}):
            refused = await client.post(
                f"/{operation}",
                headers={**contract.extra_headers, **headers, "transaction-id": key},
                json=fill(action.body, key),
            )
            expect(refused.status_code == 401, f"{operation} without the token is 401", refused)
            expect(error_of(refused) == "unauthorized", "named unauthorized", refused)
        batch = await _batch(client, contract, [_item(operation, key, action.body)], token=False)
        expect(batch.status_code == 401, "/batch without the token is 401", batch)
        allowed = await call(client, contract, operation, key, action.body)
        expect(allowed.status_code == 200, f"{operation} with the token is 200", allowed)
        expect(not replayed(allowed), "the refused calls recorded nothing", allowed)


async def check_bad_input(client: httpx.AsyncClient, contract: Contract) -> None:
    """Bad input is 422 and records nothing: the same key then runs afresh."""
    for action in contract.actions:
        key = new_key(contract, action.name)
        bad = await call(client, contract, action.name, key, action.invalid_body)
        expect(bad.status_code == 422, f"{action.name} with a bad body is 422", bad)
        expect(error_of(bad) == "invalid_request", "named invalid_request", bad)
        details = bad.json().get("details") or []
        expect(all("input" not in d for d in details), "the input is not echoed", bad)
        for bad_key in (None, "", "has space", "x" * 129):
            headers = headers_for(contract)
            if bad_key is not None:
                headers["transaction-id"] = bad_key
            no_key = await client.post(
                f"/{action.name}", headers=headers, json=fill(action.body, bad_key)
            )
            expect(no_key.status_code == 422, "a missing or bad key is 422", no_key)
            expect(error_of(no_key) == "invalid_transaction_id", "named", no_key)
        batch = await _batch(
            client,
            contract,
            [_item(action.name, key, action.body), _item(action.name, key, action.invalid_body)],
        )
        expect(batch.status_code == 422, "a batch with a bad item is 422 as a whole", batch)
        first = await call(client, contract, action.name, key, action.body)
        expect(first.status_code == 200, "the key is still free", first)
        expect(not replayed(first), "nothing was recorded for it", first)


Check = Callable[[httpx.AsyncClient, Contract], Awaitable[None]]

#: Every check, by name (a test suite parametrises over it).
CHECKS: dict[str, Check] = {
    "replay": check_replay,
    "key_reuse": check_key_reuse,
    "compensation_first": check_compensation_first,
    "settlement_first": check_settlement_first,
    "compensation_after_action": check_compensation_after_action,
    "settlement_after_action": check_settlement_after_action,
    "refusal_recorded": check_refusal_recorded,
    "batch_matches_single": check_batch_matches_single,
    "token_required": check_token_required,
    "bad_input": check_bad_input,
}


async def run_contract(client: httpx.AsyncClient, contract: Contract) -> None:
    """Every check, in order; the first violation raises."""
    for check in CHECKS.values():
        await check(client, contract)
