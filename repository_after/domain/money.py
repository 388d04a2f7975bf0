"""Money is an integer count of minor units (cents); no float ever touches a balance."""

from __future__ import annotations

import re

MIN_AMOUNT = 1
MAX_AMOUNT = 10**12
MAX_BALANCE = 10**15

TRANSACTION_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
ACCOUNT_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,64}$")


def is_valid_transaction_id(value: str) -> bool:
    return TRANSACTION_ID_PATTERN.fullmatch(value) is not None


def format_minor(amount: int) -> str:
    """1234567 -> '12,345.67' for humans; negative amounts keep their sign."""
    sign = "-" if amount < 0 else ""
    whole, cents = divmod(abs(amount), 100)
    return f"{sign}{whole:,}.{cents:02d}"
