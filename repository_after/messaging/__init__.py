"""Messaging for choreographed sagas: exactly-once effects over at-least-once delivery.

- `envelope`: `Message` (stable `message_id`, JSON payload, headers) and `message_id_for`;
- `schema`: the outbox and inbox tables, in the participant's own store (the kit's SQLite or
  PostgreSQL store), so the business change, the inbox row and the outbox rows commit together;
- `inbox`: `Inbox.handle` (check, apply, record in one transaction) and `InboxConsumer` (ack only
  after that commit; nack with requeue on failure);
- `outbox`: `enqueue` in the business transaction; the relay's claims, marks and backlog;
- `relay`: `OutboxRelay`, publishing with confirms, retrying failures forever with backoff;
- `retention`: `purge_inbox`, never closer than the retry horizon, fencing older messages;
- `ports`: the `Broker` port and the `Topology`; adapters `rabbitmq.RabbitMqBroker` (aio-pika,
  imported only where used: the `broker` extra) and `memory_broker.InMemoryBroker` (tests).
See docs/choreography.md.
"""

from repository_after.messaging.envelope import Message, message_id_for, new_message_id
from repository_after.messaging.inbox import Handled, Inbox, InboxConsumer, StaleMessage
from repository_after.messaging.outbox import Backlog, backlog, enqueue
from repository_after.messaging.ports import (
    Broker,
    BrokerError,
    Delivery,
    PublishError,
    Topology,
)
from repository_after.messaging.relay import OutboxRelay, RelayPass, RelayTiming
from repository_after.messaging.retention import HorizonTooShort, purge_inbox
from repository_after.messaging.schema import messaging_schema

__all__ = [
    "Backlog",
    "Broker",
    "BrokerError",
    "Delivery",
    "Handled",
    "HorizonTooShort",
    "Inbox",
    "InboxConsumer",
    "Message",
    "OutboxRelay",
    "PublishError",
    "RelayPass",
    "RelayTiming",
    "StaleMessage",
    "Topology",
    "backlog",
    "enqueue",
    "message_id_for",
    "messaging_schema",
    "new_message_id",
    "purge_inbox",
]
