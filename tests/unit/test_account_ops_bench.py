"""The account-operations bench (`sagabank_tools.bench.account_ops`) on a tiny load: every
saga's calls are answered 200 and counted, and the books balance (it exits otherwise); no
timing is asserted."""

from __future__ import annotations

from pathlib import Path

from sagabank_tools.bench import account_ops


async def test_the_bench_runs_every_call_and_the_books_balance(tmp_path: Path) -> None:
    ops, wall, cpu = await account_ops.run(8, 4, tmp_path / "accounts.db")
    # per saga: debit, credit and its replay; one in four: debit and its compensation
    assert ops == 6 * 3 + 2 * 2
    assert wall > 0
    assert cpu >= 0
