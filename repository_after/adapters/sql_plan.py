"""Plans: database work written once, run by a blocking or an async driver.

A plan is a generator that yields `Stmt`s and is sent back each one's `Result`; what it returns
is the answer. The SQL and the decisions between statements (raise `LeaseLost` when an UPDATE
matched nothing, stop when an INSERT conflicted) are written once in the plan; `drive` runs it
on a blocking connection (sqlite3, on `SqliteDatabase`'s job), `drive_async` on an async one
(psycopg). The caller owns the transaction around a run: a plan that raises leaves its
statements to be rolled back with it.

A generator runs once; a caller that may retry (SQLite re-runs a batch with savepoints) makes a
fresh plan for each run.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator, Sequence
from typing import Any, NamedTuple, TypeVar

T = TypeVar("T")


class Stmt(NamedTuple):
    """One statement; `many`: `args` is a list of argument tuples, one execution each."""

    sql: str
    args: Sequence[Any]
    many: bool = False


Columns = tuple[tuple[str, str], ...]


class Rows(NamedTuple):
    """A relation of many rows for a statement: named `alias`, its `columns` ((name, PostgreSQL
    type) pairs, for engines that pass the rows as typed arrays) and the rows."""

    alias: str
    columns: Columns
    values: Sequence[Sequence[Any]]


class Result(NamedTuple):
    """What a statement gave back: the rows it returned (all executions) and the rows changed."""

    rows: list[Any]
    rowcount: int


Plan = Generator[Stmt, Result, T]


def drive(plan: Plan[T], execute: Callable[[Stmt], Result]) -> T:
    """Run `plan` with a blocking `execute`; returns what the plan returns."""
    try:
        stmt = next(plan)
        while True:
            stmt = plan.send(execute(stmt))
    except StopIteration as done:
        value: T = done.value
        return value


async def drive_async(plan: Plan[T], execute: Callable[[Stmt], Awaitable[Result]]) -> T:
    """Run `plan` with an async `execute`; returns what the plan returns."""
    try:
        stmt = next(plan)
        while True:
            stmt = plan.send(await execute(stmt))
    except StopIteration as done:
        value: T = done.value
        return value
