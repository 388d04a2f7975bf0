"""Identifiers: what a transaction id (a saga's idempotency key) and an account id may look like.

Both are checked at every edge before anything is recorded: a transaction id travels in the
`transaction-id` header and becomes the key of every operation of its saga, so it must be safe to
log, to put in a header and to store; letters, digits and `._:-` only.
"""

from __future__ import annotations

import re

#: The longest key a participant accepts. A saga's own id may have to be shorter: a per-step key
#: adds `:<step>` to it (`SagaDefinition.max_saga_id_length`).
MAX_TRANSACTION_ID = 128
TRANSACTION_ID_PATTERN = re.compile(rf"^[A-Za-z0-9._:\-]{{1,{MAX_TRANSACTION_ID}}}$")
ACCOUNT_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")


def is_valid_transaction_id(value: str) -> bool:
    return TRANSACTION_ID_PATTERN.fullmatch(value) is not None
