"""The transaction id of the work in progress, for log lines that do not pass it themselves.

A request's `transaction-id` header is put in a context variable by the HTTP middleware
(`observability.middleware`); asyncio tasks started while handling it inherit it.
`TransactionIdFilter` copies it onto every log record that has none, so the JSON formatter and
the dashboard's log buffer see the id on account-service lines too, not only on saga lines.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

current_transaction_id: ContextVar[str | None] = ContextVar("sagabank_transaction_id", default=None)


class TransactionIdFilter(logging.Filter):
    """Never drops a record; only fills in `record.transaction_id` from the context."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "transaction_id", None) is None:
            record.transaction_id = current_transaction_id.get()
        return True
