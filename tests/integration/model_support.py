"""What the model-based tests share: a synchronous client over an app, and, for the
participant-kit services, a machine that keeps what each (operation, key) was answered and checks
the kit's rule every operation of every such service answers by: a call whose (operation, key)
was answered before replays that answer byte for byte (marked replayed) if it is the same
request, else it is 422 `idempotency_key_reused` and changes nothing.

Hypothesis' stateful machines are synchronous, so `SyncClient` drives the app (with its
lifespan) through an event loop of its own, over httpx's `ASGITransport`: the real routes,
request parsing and error handlers, no socket. The service's file lives in a temporary folder
per run.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, precondition, rule

from repository_after.participant_kit import NOTHING_TO_COMPENSATE, REPLAYED

Body = dict[str, Any]

#: bounded and deterministic: a few seconds, the same examples on every run
SETTINGS = settings(
    max_examples=20,
    stateful_step_count=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


class SyncClient:
    """The app with its lifespan, driven from synchronous code through its own event loop."""

    def __init__(self, app: FastAPI) -> None:
        self.loop = asyncio.new_event_loop()
        self._lifespan = app.router.lifespan_context(app)
        self.loop.run_until_complete(self._lifespan.__aenter__())
        self.http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://localhost"
        )

    def get(self, path: str) -> httpx.Response:
        return self.loop.run_until_complete(self.http.get(path))

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.http.post(path, **kwargs))

    def close(self) -> None:
        self.loop.run_until_complete(self.http.aclose())
        self.loop.run_until_complete(self._lifespan.__aexit__(None, None, None))
        self.loop.close()


@dataclass(frozen=True)
class Recorded:
    """What a participant answered (and keeps) for one (operation, key): the request it
    answered, the exact answer, and whether it changed anything."""

    request: Body | None
    status: int
    content: bytes
    applied: bool


def error(reply: httpx.Response) -> tuple[int, str]:
    return reply.status_code, str(reply.json().get("error"))


def outcome(reply: httpx.Response) -> tuple[int, str]:
    """The status and the answer's word: its `error`, or its `status`."""
    answer = reply.json()
    return reply.status_code, str(answer.get("error") or answer["status"])


def refused(reply: httpx.Response, code: str) -> bool:
    """A handler's definite refusal (409, recorded): it changed nothing."""
    assert error(reply) == (409, code)
    return False


def succeeded(reply: httpx.Response, expected: Body) -> bool:
    """A handler's success, its answer exactly `expected`: it changed something."""
    assert (reply.status_code, reply.json()) == (200, expected)
    return True


def fields_agree(recorded: Body | None, body: Body | None) -> bool:
    """A compensation's or settlement's body repeats `recorded` when every field given on both
    sides agrees (participant_kit/rules.py `agrees`): it is a check, and may be absent."""
    if recorded is None or body is None:
        return True
    return all(
        recorded[name] == value
        for name, value in body.items()
        if value is not None and recorded.get(name) is not None
    )


def assert_replay_or_reuse(recorded: Recorded, request: Body | None, reply: httpx.Response) -> None:
    """A participant-kit repeat: the same request gets the recorded answer, byte for byte and
    marked replayed; another one under the key is refused and changes nothing."""
    if request == recorded.request:
        assert (reply.status_code, reply.content) == (recorded.status, recorded.content)
        assert reply.headers.get(REPLAYED) == "true"
    else:
        assert error(reply) == (422, "idempotency_key_reused")


class ParticipantMachine(RuleBasedStateMachine):
    """A participant-kit service under random calls; subclasses build its app (`open`) and add
    the rules of its operations, each checked against their model. `act` and `compensate` check
    the kit's rules (participant_kit/rules.py (a)-(c)) and hand what is left, the handler's own
    answer, to the subclass's model."""

    def __init__(self) -> None:
        super().__init__()
        self._dir = tempfile.TemporaryDirectory()
        self.client = SyncClient(self.open(Path(self._dir.name)))
        #: (operation, key) -> what the service answered and keeps
        self.records: dict[tuple[str, str], Recorded] = {}

    def open(self, directory: Path) -> FastAPI:
        raise NotImplementedError

    def teardown(self) -> None:
        self.client.close()
        self._dir.cleanup()

    def send(self, operation: str, key: str, body: Body | None) -> httpx.Response:
        reply = self.client.post(f"/{operation}", json=body, headers={"transaction-id": key})
        # which answers a run reached: `pytest --hypothesis-show-statistics` lists them
        code, word = outcome(reply)
        event(
            f"{operation}: {code} {word}" + (" (replayed)" if reply.headers.get(REPLAYED) else "")
        )
        return reply

    def answered(self, operation: str, key: str, body: Body | None, reply: httpx.Response) -> bool:
        """True (and checked) when (operation, key) was answered before."""
        recorded = self.records.get((operation, key))
        if recorded is None:
            return False
        assert_replay_or_reuse(recorded, body, reply)
        return True

    def keep(
        self, operation: str, key: str, body: Body | None, reply: httpx.Response, applied: bool
    ) -> None:
        self.records[operation, key] = Recorded(body, reply.status_code, reply.content, applied)

    def act(
        self,
        action: str,
        key: str,
        body: Body,
        decide: Callable[[httpx.Response], bool],
        *,
        fenced_by: str | None = None,
    ) -> tuple[int, str]:
        """One call of an action: replayed or refused as reuse when answered before; 409
        `transaction_compensated`, unrecorded, once its compensation `fenced_by` answered for
        the key; else `decide` checks the handler's answer on the model (True: it applied)."""
        reply = self.send(action, key, body)
        if not self.answered(action, key, body, reply):
            fence = self.records.get((fenced_by, key)) if fenced_by is not None else None
            if fence is not None and fence.status == 200:  # a refused compensation fences nothing
                assert error(reply) == (409, "transaction_compensated")
            else:
                self.keep(action, key, body, reply, decide(reply))
        return outcome(reply)

    def compensate(
        self,
        action: str,
        compensation: str,
        key: str,
        body: Body | None,
        undo: Callable[[httpx.Response, Body], bool],
    ) -> None:
        """One call of a compensation: a body disagreeing with the applied action's request is
        422, unrecorded, first call or repeat; else replayed when answered before (its body
        compared field by field, `fields_agree`); with no applied action, the tombstone; else
        `undo` checks the handler's answer on the model, given the action's request."""
        reply = self.send(compensation, key, body)
        done = self.applied(action, key)
        if done is not None and not fields_agree(done.request, body):
            assert error(reply) == (422, "idempotency_key_reused")
            return
        recorded = self.records.get((compensation, key))
        if recorded is not None:
            same = fields_agree(recorded.request, body)
            assert_replay_or_reuse(recorded, recorded.request if same else body, reply)
            return
        if done is None or done.request is None:
            tombstone = {"operation": compensation, "transaction_id": key}
            succeeded(reply, tombstone | {"status": NOTHING_TO_COMPENSATE})
            self.keep(compensation, key, body, reply, False)
        else:
            self.keep(compensation, key, body, reply, undo(reply, done.request))

    def repeat(
        self, operation: str, key: str, body: Body | None, state: Callable[[], object]
    ) -> None:
        """(operation, key), answered before, called again with `body`: the first request gets
        the FIRST answer again, byte for byte and marked replayed; another request is 422
        `idempotency_key_reused`, not marked. Either way the service's `state` (read from the
        service itself, not from the model) is what it was, and the key still replays its first
        answer to its first request: nothing the call did was kept."""
        recorded = self.records[operation, key]
        before = state()
        reply = self.send(operation, key, body)
        if body == recorded.request:
            assert (reply.status_code, reply.content) == (recorded.status, recorded.content)
            assert reply.headers.get(REPLAYED) == "true"
        else:
            assert error(reply) == (422, "idempotency_key_reused")
            assert REPLAYED not in reply.headers
        assert state() == before
        again = self.send(operation, key, recorded.request)
        assert (again.status_code, again.content) == (recorded.status, recorded.content)
        assert again.headers.get(REPLAYED) == "true"

    def recorded(self, operation: str) -> list[str]:
        """The keys `operation` answered under (applied or refused: both are replayed)."""
        return sorted(k for op, k in self.records if op == operation)

    def applied(self, operation: str, key: str) -> Recorded | None:
        recorded = self.records.get((operation, key))
        return recorded if recorded is not None and recorded.applied else None

    def tombstoned(self, action: str, compensation: str) -> list[str]:
        """Keys whose compensation answered before any action: a late action is fenced out."""
        return sorted(
            k for op, k in self.records if op == compensation and (action, k) not in self.records
        )

    @precondition(lambda self: self.records)
    @rule(data=st.data())
    def deliver_again(self, data: st.DataObject) -> None:
        """A duplicate delivery of a call already answered: its recorded answer, replayed."""
        (operation, key), recorded = data.draw(st.sampled_from(sorted(self.records.items())))
        reply = self.send(operation, key, recorded.request)
        assert_replay_or_reuse(recorded, recorded.request, reply)
