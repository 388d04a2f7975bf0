"""A message as the outbox stores it and the broker carries it.

Invariants:
- `message_id` is stable: chosen once, when the message is written to the outbox, and carried
  unchanged by every publication, redelivery and redrive of it. A consumer's inbox is keyed by
  it, so every copy of one message applies at most once. A message about a saga's step derives
  its id from (saga, step, role) (`message_id_for`): a step re-run after a crash, which writes
  the same message again, collides with the first on the outbox's `UNIQUE (message_id)`.
- the payload is a JSON object; its bytes on the wire are `orjson.dumps(payload)`.
- `created_at` (ISO 8601 UTC, microseconds; the sender's clock) travels as a header: a consumer
  whose inbox was purged refuses copies older than what it purged (`inbox.StaleMessage`). A
  received copy whose header is missing or not an aware ISO 8601 time is of unknown age, dated
  `UNKNOWN_AGE` (the epoch): it counts as old, never as fresh, so a purge's fence refuses it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

#: The namespace of the message ids derived from (saga, step, role).
MESSAGE_NAMESPACE = uuid.UUID("6f1d2c1e-8a55-4d0c-9a77-3b8f0e5a2c41")
#: The header that carries `Message.created_at`.
CREATED_AT = "sagabank-created-at"
#: The creation time of a received copy whose header does not say it (`from_wire`): older than
#: any purge, so an inbox that purged refuses it rather than risk applying it twice.
UNKNOWN_AGE = "1970-01-01T00:00:00.000000+00:00"


def utc_now_text() -> str:
    """Now, in the text form the outbox and the inbox keep their timestamps in."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def message_id_for(*, saga_id: str, step: str, role: str) -> str:
    """The stable id of the message a saga's step sends in a role ("action", "compensation",
    "reply", ...): the same inputs give the same id in every process, forever."""
    return str(uuid.uuid5(MESSAGE_NAMESPACE, f"{saga_id}\x1f{step}\x1f{role}"))


def new_message_id() -> str:
    """A fresh random id, for a message that belongs to no saga step."""
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class Message:
    message_id: str
    routing_key: str
    payload: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)
    created_at: str = field(default_factory=utc_now_text)
    #: As received: deliveries of this copy before this one (the broker's count, which a
    #: consumer's restart does not reset); never published, never compared.
    delivery_count: int = field(default=0, compare=False)

    def body(self) -> bytes:
        return orjson.dumps(dict(self.payload))

    def wire_headers(self) -> dict[str, str]:
        """The headers as published: the message's own and its creation time."""
        return {**self.headers, CREATED_AT: self.created_at}

    @classmethod
    def from_wire(
        cls, *, message_id: str, routing_key: str, body: bytes, headers: Mapping[str, Any]
    ) -> Message:
        """A received message. Broker bookkeeping (`x-death`, `x-delivery-count`, ...) and any
        header that is not text is left out: it is not part of the message."""
        payload = orjson.loads(body)
        if not isinstance(payload, dict):
            raise ValueError("a message's payload must be a JSON object")
        own = {
            k: v
            for k, v in headers.items()
            if isinstance(v, str) and not k.startswith("x-") and k != CREATED_AT
        }
        return cls(
            message_id=message_id,
            routing_key=routing_key,
            payload=payload,
            headers=own,
            created_at=_sent_at(headers.get(CREATED_AT)),
        )


def _sent_at(header: object) -> str:
    """The created-at header if it is an aware ISO 8601 time, else `UNKNOWN_AGE` (never the
    receive time: a late copy dated on arrival would pass every purge's fence)."""
    if isinstance(header, str):
        try:
            if datetime.fromisoformat(header).tzinfo is not None:
                return header
        except ValueError:
            pass
    return UNKNOWN_AGE
