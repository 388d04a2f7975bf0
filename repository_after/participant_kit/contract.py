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

import hashlib
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from repository_after.participant_kit.core import ALREADY_APPLIED, NOTHING_TO_COMPENSATE, VOIDED

Body = Mapping[str, Any]
#: A body value sent as one derived from the call's key (see `ContractAction`).
PER_KEY = "{per-key}"


class ContractViolation(AssertionError):
    """The participant broke a rule of the contract."""


@dataclass(frozen=True)
class ContractAction:
    """One action of the service under test.

    `body` must be applied every time it is sent under a new key (open enough stock, money…);
    `other_body` is another valid request (key reuse); `invalid_body` fails validation;
    `refused_body`, if given, is a valid request the service refuses definitely (4xx).
    A string value `PER_KEY` in a body is sent as a value derived from the call's key (letters,
    digits and `-`, 26 characters): a field that must be new for every key, such as the id of
    the order an action creates, while every role of one key still sends the same request."""

    name: str
    body: Body
    other_body: Body
    invalid_body: Body
    compensation: str | None = None
    #: The status word of a compensation that undid an applied action (`released`, …).
    compensated: str | None = None
    settlement: str | None = None
    refused_body: Body | None = None


@dataclass(frozen=True)
class Contract:
    actions: Sequence[ContractAction]
    token: str | None = None
    #: Every key the checks use starts with this (so they are easy to find in the records).
    key_prefix: str = "contract"
    nothing_to_compensate: str = NOTHING_TO_COMPENSATE
    voided: str = VOIDED
    already_applied: str = ALREADY_APPLIED
    compensated_code: str = "transaction_compensated"
    voided_code: str = "transaction_voided"
    batch_path: str = "/batch"
    extra_headers: Mapping[str, str] = field(default_factory=dict)


def _expect(condition: bool, rule: str, response: httpx.Response | None = None) -> None:
    if condition:
        return
    seen = "" if response is None else f" (got {response.status_code} {response.text[:300]!r})"
    raise ContractViolation(rule + seen)


def _fill(body: Body | None, key: str | None) -> Body | None:
    """`body` with every `PER_KEY` value replaced by one derived from `key` (see
    `ContractAction`)."""
    if body is None:
        return None
    derived = "k-" + hashlib.sha256(str(key).encode()).hexdigest()[:24]
    return {name: derived if value == PER_KEY else value for name, value in body.items()}


def _key(contract: Contract, what: str) -> str:
    return f"{contract.key_prefix}-{uuid.uuid4().hex[:16]}:{what}"


def _headers(contract: Contract, key: str | None = None, *, token: bool = True) -> dict[str, str]:
    headers = dict(contract.extra_headers)
    if token and contract.token is not None:
        headers["Authorization"] = f"Bearer {contract.token}"
    if key is not None:
        headers["transaction-id"] = key
    return headers


async def _call(
    client: httpx.AsyncClient,
    contract: Contract,
    operation: str,
    key: str,
    body: Body | None,
    *,
    token: bool = True,
) -> httpx.Response:
    headers = _headers(contract, key, token=token)
    filled = _fill(body, key)
    if filled is None:
        return await client.post(f"/{operation}", headers=headers)
    return await client.post(f"/{operation}", headers=headers, json=filled)


def _replayed(response: httpx.Response) -> bool:
    return bool(response.headers.get("idempotent-replayed") == "true")


def _status(response: httpx.Response) -> object:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("status") if isinstance(body, dict) else None


def _error(response: httpx.Response) -> object:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error") if isinstance(body, dict) else None


async def _applied(
    client: httpx.AsyncClient, contract: Contract, action: ContractAction, key: str
) -> httpx.Response:
    first = await _call(client, contract, action.name, key, action.body)
    _expect(first.status_code == 200, f"{action.name} of a valid body is applied (200)", first)
    _expect(not _replayed(first), f"a first {action.name} is not marked replayed", first)
    _expect(isinstance(_status(first), str), f"{action.name} answers a 'status' word", first)
    return first


async def check_replay(client: httpx.AsyncClient, contract: Contract) -> None:
    """A repeated call replays the first answer byte for byte, marked replayed."""
    for action in contract.actions:
        key = _key(contract, action.name)
        first = await _applied(client, contract, action, key)
        again = await _call(client, contract, action.name, key, action.body)
        _expect(again.status_code == first.status_code, f"{action.name} replays its status", again)
        _expect(again.content == first.content, f"{action.name} replays the same bytes", again)
        _expect(_replayed(again), f"a repeated {action.name} says Idempotent-Replayed", again)


async def check_key_reuse(client: httpx.AsyncClient, contract: Contract) -> None:
    """The same key with a different request is 422 idempotency_key_reused; the first stands."""
    for action in contract.actions:
        key = _key(contract, action.name)
        first = await _applied(client, contract, action, key)
        other = await _call(client, contract, action.name, key, action.other_body)
        _expect(other.status_code == 422, f"{action.name}: key reuse is 422", other)
        _expect(_error(other) == "idempotency_key_reused", "key reuse is named", other)
        again = await _call(client, contract, action.name, key, action.body)
        _expect(again.content == first.content, "the first request still replays", again)


async def check_compensation_first(client: httpx.AsyncClient, contract: Contract) -> None:
    """A compensation before its action leaves a tombstone; the late action is refused (409)."""
    for action in contract.actions:
        if action.compensation is None:
            continue
        key = _key(contract, action.name)
        comp = await _call(client, contract, action.compensation, key, action.body)
        _expect(comp.status_code == 200, f"{action.compensation} first is 200", comp)
        _expect(_status(comp) == contract.nothing_to_compensate, "it is a tombstone", comp)
        late = await _call(client, contract, action.name, key, action.body)
        _expect(late.status_code == 409, f"a late {action.name} is refused (409)", late)
        _expect(_error(late) == contract.compensated_code, "the refusal is named", late)
        again = await _call(client, contract, action.compensation, key, action.body)
        _expect(again.content == comp.content and _replayed(again), "the tombstone replays", again)


async def check_settlement_first(client: httpx.AsyncClient, contract: Contract) -> None:
    """A settlement before its action answers `voided`; the late action is refused (409)."""
    for action in contract.actions:
        if action.settlement is None:
            continue
        key = _key(contract, action.name)
        void = await _call(client, contract, action.settlement, key, action.body)
        _expect(void.status_code == 200, f"{action.settlement} first is 200", void)
        _expect(_status(void) == contract.voided, "it answers voided", void)
        late = await _call(client, contract, action.name, key, action.body)
        _expect(late.status_code == 409, f"a late {action.name} is refused (409)", late)
        _expect(_error(late) == contract.voided_code, "the refusal is named", late)


async def check_compensation_after_action(client: httpx.AsyncClient, contract: Contract) -> None:
    """A compensation after its action runs once and answers its own word; the action then
    still replays its first answer (it is not applied again)."""
    for action in contract.actions:
        if action.compensation is None:
            continue
        key = _key(contract, action.name)
        first = await _applied(client, contract, action, key)
        comp = await _call(client, contract, action.compensation, key, action.body)
        _expect(comp.status_code == 200, f"{action.compensation} after the action is 200", comp)
        word = _status(comp)
        _expect(word != contract.nothing_to_compensate, "it is no tombstone", comp)
        if action.compensated is not None:
            _expect(word == action.compensated, f"it answers {action.compensated!r}", comp)
        again = await _call(client, contract, action.compensation, key, action.body)
        _expect(again.content == comp.content and _replayed(again), "it replays", again)
        late = await _call(client, contract, action.name, key, action.body)
        _expect(late.content == first.content and _replayed(late), "the action replays", late)


async def check_settlement_after_action(client: httpx.AsyncClient, contract: Contract) -> None:
    """A settlement after its action answers `already_applied`."""
    for action in contract.actions:
        if action.settlement is None:
            continue
        key = _key(contract, action.name)
        await _applied(client, contract, action, key)
        settle = await _call(client, contract, action.settlement, key, action.body)
        _expect(settle.status_code == 200, f"{action.settlement} after the action is 200", settle)
        _expect(_status(settle) == contract.already_applied, "it says already_applied", settle)


async def check_refusal_recorded(client: httpx.AsyncClient, contract: Contract) -> None:
    """A definite refusal is recorded: the same call replays it, byte for byte."""
    for action in contract.actions:
        if action.refused_body is None:
            continue
        key = _key(contract, action.name)
        refused = await _call(client, contract, action.name, key, action.refused_body)
        _expect(400 <= refused.status_code < 500, f"{action.name} refuses (4xx)", refused)
        _expect(refused.status_code not in (408, 422, 429), "a definite business refusal", refused)
        _expect(isinstance(_error(refused), str), "the refusal names its code", refused)
        again = await _call(client, contract, action.name, key, action.refused_body)
        _expect(again.status_code == refused.status_code, "the refusal replays", again)
        _expect(again.content == refused.content and _replayed(again), "byte for byte", again)


async def _batch(
    client: httpx.AsyncClient,
    contract: Contract,
    items: list[dict[str, Any]],
    *,
    token: bool = True,
) -> httpx.Response:
    return await client.post(
        contract.batch_path, headers=_headers(contract, token=token), json={"operations": items}
    )


def _item(operation: str, key: str, body: Body | None) -> dict[str, Any]:
    return {"operation": operation, "transaction_id": key, **(_fill(body, key) or {})}


async def check_batch_matches_single(client: httpx.AsyncClient, contract: Contract) -> None:
    """An item of /batch answers what its single endpoint answers, either one first."""
    items, singles = [], []
    for action in contract.actions:
        items.append((action.name, _key(contract, action.name), action.body))
        if action.refused_body is not None:
            items.append((action.name, _key(contract, action.name), action.refused_body))
        if action.compensation is not None:
            items.append((action.compensation, _key(contract, action.name), action.body))
        singles.append((action.name, _key(contract, action.name), action.body))
    response = await _batch(client, contract, [_item(*i) for i in items])
    _expect(response.status_code == 200, "a valid batch is 200", response)
    results = response.json()["results"]
    _expect(len(results) == len(items), "one result per item, in order", response)
    for (operation, key, body), result in zip(items, results, strict=True):
        _expect(result["replayed"] is False, f"a first {operation} in a batch is not replayed")
        single = await _call(client, contract, operation, key, body)
        _expect(_replayed(single), f"the single {operation} replays the batch's item", single)
        _expect(single.status_code == result["status_code"], "the same status", single)
        _expect(single.json() == result["body"], "the same body", single)
    for operation, key, body in singles:
        single = await _call(client, contract, operation, key, body)
        response = await _batch(client, contract, [_item(operation, key, body)])
        _expect(response.status_code == 200, "a valid batch is 200", response)
        (result,) = response.json()["results"]
        _expect(result["replayed"] is True, f"a batched {operation} replays the single call")
        _expect(result["status_code"] == single.status_code, "the same status")
        _expect(result["body"] == single.json(), "the same body")
        _expect(orjson.dumps(result["body"]) == orjson.dumps(single.json()), "the same bytes")


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
        key = _key(contract, operation)
        for headers in ({}, wrong, {"Authorization": contract.token}):
            refused = await client.post(
                f"/{operation}",
                headers={**contract.extra_headers, **headers, "transaction-id": key},
                json=_fill(action.body, key),
            )
            _expect(refused.status_code == 401, f"{operation} without the token is 401", refused)
            _expect(_error(refused) == "unauthorized", "named unauthorized", refused)
        batch = await _batch(client, contract, [_item(operation, key, action.body)], token=False)
        _expect(batch.status_code == 401, "/batch without the token is 401", batch)
        allowed = await _call(client, contract, operation, key, action.body)
        _expect(allowed.status_code == 200, f"{operation} with the token is 200", allowed)
        _expect(not _replayed(allowed), "the refused calls recorded nothing", allowed)


async def check_bad_input(client: httpx.AsyncClient, contract: Contract) -> None:
    """Bad input is 422 and records nothing: the same key then runs afresh."""
    for action in contract.actions:
        key = _key(contract, action.name)
        bad = await _call(client, contract, action.name, key, action.invalid_body)
        _expect(bad.status_code == 422, f"{action.name} with a bad body is 422", bad)
        _expect(_error(bad) == "invalid_request", "named invalid_request", bad)
        details = bad.json().get("details") or []
        _expect(all("input" not in d for d in details), "the input is not echoed", bad)
        for bad_key in (None, "", "has space", "x" * 129):
            headers = _headers(contract)
            if bad_key is not None:
                headers["transaction-id"] = bad_key
            no_key = await client.post(
                f"/{action.name}", headers=headers, json=_fill(action.body, bad_key)
            )
            _expect(no_key.status_code == 422, "a missing or bad key is 422", no_key)
            _expect(_error(no_key) == "invalid_transaction_id", "named", no_key)
        batch = await _batch(
            client,
            contract,
            [_item(action.name, key, action.body), _item(action.name, key, action.invalid_body)],
        )
        _expect(batch.status_code == 422, "a batch with a bad item is 422 as a whole", batch)
        first = await _call(client, contract, action.name, key, action.body)
        _expect(first.status_code == 200, "the key is still free", first)
        _expect(not _replayed(first), "nothing was recorded for it", first)


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
