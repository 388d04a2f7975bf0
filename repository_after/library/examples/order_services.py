"""The order example's "services": inventory, payments and shipping as one small SQLite file.

Every side effect is one row of `effects`, written in its own transaction (synchronous=FULL: on
disk when the call returns) under the step's idempotency key, `UNIQUE(kind, key)`: a second call
with the key finds the row and answers as the first did, so a step the engine calls again after
a crash changes nothing again. Compensations and settlements leave their own row (a tombstone)
under the same key, and an action finds it and refuses (`Refused`): an action that arrives after
its undo, or after its settlement said it never happened, never lands. `effects` in `seq` order
is what happened, which the crash tests compare with a run without a crash.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from repository_after.library.definition import Refused

#: Kinds of effect rows; `fence` is a settlement's "it never happened".
RESERVE, RELEASE, CHARGE, REFUND, SHIP, FENCE = (
    "reserve",
    "release",
    "charge",
    "refund",
    "ship",
    "fence",
)
#: The largest charge the payment service accepts, in minor units (more is declined).
CARD_LIMIT = 100_000


class OrderServices:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = FULL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS effects (seq INTEGER PRIMARY KEY AUTOINCREMENT, "
            "kind TEXT NOT NULL, key TEXT NOT NULL, detail TEXT NOT NULL, UNIQUE (kind, key))"
        )

    def close(self) -> None:
        self._conn.close()

    def _apply(self, kind: str, key: str, detail: str, *, fenced_by: Sequence[str] = ()) -> int:
        """Record the effect once: its `seq`, the first call's for a repeated key. Refused if a
        row of `fenced_by` exists under the key (its undo or its settlement came first)."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                "SELECT seq FROM effects WHERE kind = ? AND key = ?", (kind, key)
            ).fetchone()
            if row is None:
                for fence in fenced_by:
                    if conn.execute(
                        "SELECT 1 FROM effects WHERE kind = ? AND key = ?", (fence, key)
                    ).fetchone():
                        raise Refused(f"{kind} under {key}: already {fence}d")
                row = conn.execute(
                    "INSERT INTO effects (kind, key, detail) VALUES (?, ?, ?) RETURNING seq",
                    (kind, key, detail),
                ).fetchone()
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return int(row[0])

    def _has(self, kind: str, key: str) -> bool:
        row = self._conn.execute("SELECT 1 FROM effects WHERE kind = ? AND key = ?", (kind, key))
        return row.fetchone() is not None

    # -- inventory -----------------------------------------------------------------------

    def reserve_items(self, *, key: str, order_id: str, items: str) -> str:
        return f"rsv-{self._apply(RESERVE, key, f'{order_id}: {items}', fenced_by=(RELEASE,))}"

    def release_items(self, *, key: str) -> None:
        """Safe whether or not the reservation landed: the tombstone fences a late one."""
        self._apply(RELEASE, key, "released" if self._has(RESERVE, key) else "tombstone")

    # -- payments ------------------------------------------------------------------------

    def charge(self, *, key: str, user_id: str, amount: int) -> str:
        if amount > CARD_LIMIT:
            raise Refused(f"card of {user_id} declined for {amount}")
        return f"pay-{self._apply(CHARGE, key, f'{user_id}: {amount}', fenced_by=(REFUND,))}"

    def refund(self, *, key: str) -> None:
        self._apply(REFUND, key, "refunded" if self._has(CHARGE, key) else "tombstone")

    # -- shipping ------------------------------------------------------------------------

    def create_shipment(self, *, key: str, address: str) -> str:
        if not address.strip():
            raise Refused("no shipping address")
        return f"shp-{self._apply(SHIP, key, address, fenced_by=(FENCE,))}"

    def shipped(self, *, key: str) -> bool:
        """The settlement of a shipment whose outcome stayed unknown: True if it was made;
        else it is fenced out for good (a late `create_shipment` is refused) and False."""
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")  # no shipment can land between the check and the fence
        try:
            landed = self._has(SHIP, key)
            if not landed:
                conn.execute(
                    "INSERT OR IGNORE INTO effects (kind, key, detail) VALUES (?, ?, ?)",
                    (FENCE, key, "never shipped"),
                )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return landed

    def effects(self) -> list[tuple[str, str, str]]:
        """(kind, key, detail) of every effect, in the order they happened."""
        rows = self._conn.execute("SELECT kind, key, detail FROM effects ORDER BY seq")
        return [(str(k), str(key), str(d)) for k, key, d in rows.fetchall()]
