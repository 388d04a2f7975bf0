"""The messaging foundation's small rules: stable message ids, the wire form of a message, AMQP
topic matching in the fake broker, and the relay's backoff."""

from __future__ import annotations

import pytest

from repository_after.messaging import Message, RelayTiming, message_id_for
from repository_after.messaging.envelope import CREATED_AT
from repository_after.messaging.memory_broker import topic_matches


def test_a_steps_message_id_is_the_same_every_time_and_differs_by_saga_step_and_role() -> None:
    first = message_id_for(saga_id="s1", step="debit", role="action")
    assert first == message_id_for(saga_id="s1", step="debit", role="action")
    others = {
        message_id_for(saga_id="s2", step="debit", role="action"),
        message_id_for(saga_id="s1", step="credit", role="action"),
        message_id_for(saga_id="s1", step="debit", role="compensation"),
        message_id_for(saga_id="s1:debit", step="", role="action"),  # no ambiguous joins
    }
    assert first not in others
    assert len(others) == 4


def test_a_message_survives_its_wire_form_without_the_brokers_bookkeeping() -> None:
    sent = Message("m1", "order.placed", {"qty": 2, "sku": "w"}, headers={"saga": "s1"})
    wire = sent.wire_headers()
    assert wire[CREATED_AT] == sent.created_at
    received = Message.from_wire(
        message_id="m1",
        routing_key="order.placed",
        body=sent.body(),
        headers={
            **wire,
            "x-delivery-count": 3,
            "x-death": [{"count": 1}],
            "x-first-death-queue": "q",
        },
    )
    assert received == sent


def test_a_payload_that_is_not_a_json_object_is_refused() -> None:
    with pytest.raises(ValueError, match="JSON object"):
        Message.from_wire(message_id="m", routing_key="k", body=b"[1, 2]", headers={})


@pytest.mark.parametrize(
    ("pattern", "key", "matches"),
    [
        ("ledger.*", "ledger.entry", True),
        ("ledger.*", "ledger", False),
        ("ledger.*", "ledger.entry.x", False),
        ("audit.#", "audit", True),
        ("audit.#", "audit.a.b", True),
        ("#", "anything.at.all", True),
        ("#.done", "saga.step.done", True),
        ("#.done", "saga.step.done.not", False),
        ("a.*.c", "a.b.c", True),
        ("a.*.c", "a.c", False),
        ("a.b", "a.bb", False),
    ],
)
def test_topic_patterns_match_as_amqp_defines_them(pattern: str, key: str, matches: bool) -> None:
    assert topic_matches(pattern, key) is matches


def test_the_relays_backoff_doubles_up_to_its_cap() -> None:
    timing = RelayTiming(initial_backoff=0.5, max_backoff=3.0)
    assert [timing.backoff(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert timing.backoff(10_000) == 3.0


def test_a_failed_delivery_is_handed_back_after_a_doubling_capped_delay() -> None:
    from repository_after.messaging.inbox import MAX_REQUEUE_DELAY, Inbox, InboxConsumer

    consumer = InboxConsumer(Inbox(None, consumer="c", handler=None), requeue_delay=0.5)  # type: ignore[arg-type]
    assert [consumer.delay(n) for n in range(4)] == [0.5, 1.0, 2.0, 4.0]
    assert consumer.delay(50) == MAX_REQUEUE_DELAY
    assert InboxConsumer(consumer.inbox, requeue_delay=0).delay(3) == 0
