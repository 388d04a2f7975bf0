"""A bounded in-memory buffer of recent log lines per transaction id, for the dashboard.

Bounds: at most `max_transactions` ids (the least recently logged one is forgotten first) and
`max_lines` lines each, so a busy or long-running process holds a fixed amount of memory. Only
records carrying a transaction id (see `context.TransactionIdFilter`) are kept.

These lines are public (the dashboard shows them to any reader), so no internal error text goes
in: an exception among a record's arguments is shown as its class name only (`storage failure:
StorageError`), and tracebacks never; the driver's words stay in the operators' log, which gets
the full record from its own handler.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict, deque
from datetime import UTC, datetime

from repository_after.observability.context import TransactionIdFilter


def _public_message(record: logging.LogRecord) -> str:
    args = record.args
    if isinstance(args, tuple):
        args = tuple(_public_arg(arg) for arg in args)
    elif isinstance(args, dict):
        args = {key: _public_arg(value) for key, value in args.items()}
    message = str(record.msg)
    try:
        return message % args if args else message
    except (TypeError, ValueError):  # a malformed call: the template alone is still safe
        return message


def _public_arg(arg: object) -> object:
    return type(arg).__name__ if isinstance(arg, BaseException) else arg


class RecentLogs(logging.Handler):
    def __init__(self, *, max_transactions: int = 500, max_lines: int = 50) -> None:
        super().__init__(level=logging.DEBUG)
        self.addFilter(TransactionIdFilter())
        self._max_transactions = max_transactions
        self._max_lines = max_lines
        self._lines: OrderedDict[str, deque[dict[str, str]]] = OrderedDict()
        # Records may come from any thread (the SQLite thread logs too).
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        transaction_id = getattr(record, "transaction_id", None)
        if not transaction_id:
            return
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": _public_message(record),
        }
        with self._guard:
            lines = self._lines.get(transaction_id)
            if lines is None:
                lines = self._lines[transaction_id] = deque(maxlen=self._max_lines)
                while len(self._lines) > self._max_transactions:
                    self._lines.popitem(last=False)
            else:
                self._lines.move_to_end(transaction_id)
            lines.append(line)

    def lines(self, transaction_id: str) -> list[dict[str, str]]:
        with self._guard:
            return list(self._lines.get(transaction_id, ()))

    def attach(self) -> None:
        logging.getLogger().addHandler(self)

    def detach(self) -> None:
        logging.getLogger().removeHandler(self)
