"""What the participant contract (`contract`) is told about a service, and how its checks call it.

`Contract` describes the service under test (its actions, bodies, words and token);
`ContractViolation` is what a broken rule raises; the helpers send one call the way the
orchestrator does (the key in `transaction-id`, the token if any) and read its answer.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

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
    A string value `PER_KEY` in a body (or an item of a list value) is sent as a value derived
    from the call's key (letters, digits and `-`, 26 characters): a field that must be new for
    every key, such as the id of the order an action creates, or the pupil a group assigns,
    while every role of one key still sends the same request."""

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


def expect(condition: bool, rule: str, response: httpx.Response | None = None) -> None:
    if condition:
        return
    seen = "" if response is None else f" (got {response.status_code} {response.text[:300]!r})"
    raise ContractViolation(rule + seen)


def fill(body: Body | None, key: str | None) -> Body | None:
    """`body` with every `PER_KEY` value replaced by one derived from `key` (see
    `ContractAction`)."""
    if body is None:
        return None
    derived = "k-" + hashlib.sha256(str(key).encode()).hexdigest()[:24]

    def filled(value: Any) -> Any:
        if isinstance(value, list):
            return [derived if item == PER_KEY else item for item in value]
        return derived if value == PER_KEY else value

    return {name: filled(value) for name, value in body.items()}


def new_key(contract: Contract, what: str) -> str:
    return f"{contract.key_prefix}-{uuid.uuid4().hex[:16]}:{what}"


def headers_for(
    contract: Contract, key: str | None = None, *, token: bool = True
) -> dict[str, str]:
    headers = dict(contract.extra_headers)
    if token and contract.token is not None:
        headers["Authorization"] = f"Bearer {contract.token}"
    if key is not None:
        headers["transaction-id"] = key
    return headers


async def call(
    client: httpx.AsyncClient,
    contract: Contract,
    operation: str,
    key: str,
    body: Body | None,
    *,
    token: bool = True,
) -> httpx.Response:
    headers = headers_for(contract, key, token=token)
    filled = fill(body, key)
    if filled is None:
        return await client.post(f"/{operation}", headers=headers)
    return await client.post(f"/{operation}", headers=headers, json=filled)


def replayed(response: httpx.Response) -> bool:
    return bool(response.headers.get("idempotent-replayed") == "true")


def status_of(response: httpx.Response) -> object:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("status") if isinstance(body, dict) else None


def error_of(response: httpx.Response) -> object:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error") if isinstance(body, dict) else None


async def applied(
    client: httpx.AsyncClient, contract: Contract, action: ContractAction, key: str
) -> httpx.Response:
    first = await call(client, contract, action.name, key, action.body)
    expect(first.status_code == 200, f"{action.name} of a valid body is applied (200)", first)
    expect(not replayed(first), f"a first {action.name} is not marked replayed", first)
    expect(isinstance(status_of(first), str), f"{action.name} answers a 'status' word", first)
    return first
