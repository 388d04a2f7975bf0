"""The bench's seeded transfer plan, shared by every system it measures.

`scenarios` (sagabank and the naive design) and `cqrs_saga` (python-cqrs) load the same plan for
the same seed, so their figures compare like with like. The accounts are the account service's
demo accounts (`SAGABANK_DEMO_ACCOUNTS`, ten by default).
"""

from __future__ import annotations

import random

ACCOUNTS = [f"acc-{i:02d}" for i in range(1, 11)]


def transfer_plan(n: int, seed: int) -> list[tuple[str, str, int]]:
    """n (source, target, amount) transfers between two distinct demo accounts."""
    rng = random.Random(seed)
    transfers: list[tuple[str, str, int]] = []
    for _ in range(n):
        source, target = rng.sample(ACCOUNTS, 2)
        transfers.append((source, target, rng.randint(1, 3_000)))
    return transfers
