"""Logging set-up: plain text by default, one JSON object per line with `SAGABANK_LOG_JSON=1`.

Saga lines carry the transaction id (`extra={"transaction_id": ...}`), which the JSON format
emits as its own field so a transfer's lines can be grepped out of a busy log. Lines logged while
handling a request with a `transaction-id` header get it too (`TransactionIdFilter`, fed by the
HTTP middleware), so the account service's lines of one operation carry the id as well.
"""

from __future__ import annotations

import json
import logging
import sys

from repository_after.config import Settings
from repository_after.observability.context import TransactionIdFilter


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        transaction_id = getattr(record, "transaction_id", None)
        if transaction_id:
            line["transaction_id"] = transaction_id
        return json.dumps(line)


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(TransactionIdFilter())
    if settings.log_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
    logging.getLogger("httpx").setLevel(logging.WARNING)
