"""The inbox's purge fence holds for a copy whose creation time is unknown.

`Inbox.handle` refuses a message created before what retention purged (`StaleMessage`): its row
may be gone, so applying it could apply it twice. The age comes from the message's created-at
header. A received copy without that header (dropped by a tool that re-published it, a shovel,
a publisher of another release) or with one that is not an aware ISO 8601 time used to be dated
*now* by `Message.from_wire`, the receive time: always fresh, so a late copy of a purged message
applied a second time. An unknown age must count as old: refused once a fence exists, applied
as before while none does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from repository_after.messaging import Inbox, Message, purge_inbox
from repository_after.messaging.envelope import CREATED_AT
from repository_after.messaging.inbox import StaleMessage
from tests.messaging_support import apply, effects, ledger_message, open_store


def _copy_received(message: Message, headers: dict[str, object]) -> Message:
    return Message.from_wire(
        message_id=message.message_id,
        routing_key=message.routing_key,
        body=orjson.dumps(dict(message.payload)),
        headers=headers,
    )


@pytest.mark.parametrize(
    "headers",
    [{}, {CREATED_AT: 17}, {CREATED_AT: "yesterday"}, {CREATED_AT: "2020-01-01T00:00:00"}],
    ids=["missing", "not-text", "not-a-time", "naive"],
)
async def test_a_late_copy_of_unknown_age_is_refused_once_the_inbox_was_purged(
    tmp_path: Path, headers: dict[str, object]
) -> None:
    store = open_store("sqlite", tmp_path / "inbox.db")
    try:
        inbox = Inbox(store, consumer="ledger", handler=apply)
        now = datetime.now(UTC)
        long_ago = now - timedelta(days=40)
        sent = ledger_message("s10", 1)
        old = Message(
            sent.message_id, sent.routing_key, sent.payload, created_at=long_ago.isoformat()
        )
        await inbox.handle(old)
        await store.transaction(  # applied 40 days ago (the test's only shortcut through time)
            lambda tx: tx.execute("UPDATE inbox SET received_at = ?", (long_ago.isoformat(),))
        )
        cutoff = (now - timedelta(days=30)).isoformat(timespec="microseconds")
        purged = await purge_inbox(store, consumer="ledger", before=cutoff, now=now, min_horizon=60)
        assert purged == 1
        with pytest.raises(StaleMessage):
            await inbox.handle(_copy_received(old, headers))
        assert await effects(store) == {old.message_id: 1}  # applied once, not twice
    finally:
        await store.close()


async def test_a_message_of_unknown_age_still_applies_while_nothing_was_purged(
    tmp_path: Path,
) -> None:
    store = open_store("sqlite", tmp_path / "inbox.db")
    try:
        inbox = Inbox(store, consumer="ledger", handler=apply)
        fresh = ledger_message("s11", 2)
        assert not (await inbox.handle(_copy_received(fresh, {}))).duplicate
        assert (await inbox.handle(_copy_received(fresh, {}))).duplicate
        assert await effects(store) == {fresh.message_id: 1}
    finally:
        await store.close()
