"""Money is an integer count of minor units (cents); no float ever touches a balance."""

from __future__ import annotations

MIN_AMOUNT = 1
MAX_AMOUNT = 10**12
MAX_BALANCE = 10**15


def format_minor(amount: int) -> str:
    """1234567 -> '12,345.67' for humans; negative amounts keep their sign."""
    sign = "-" if amount < 0 else ""
    whole, cents = divmod(abs(amount), 100)
    return f"{sign}{whole:,}.{cents:02d}"
