"""`sagabank sagas list|show|retry|resolve`: the operator's view of the saga log.

`list [--type T] [--status S]` shows what `GET /sagas` and `GET /sagas/{type}` answer
(`service_layer.saga_listing`): a type column, the parameters, and the counts by type and status.

These go through the same `Orchestrator` methods as the HTTP admin endpoints. Run them against
the orchestrator's database (`SAGABANK_DATABASE_URL`); `retry` calls the account service at
`SAGABANK_ACCOUNTS_URL`. Retry a parked saga only while no other process drives it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from repository_after.bootstrap import orchestrator_session, saga_types
from repository_after.config import get_settings
from repository_after.domain.saga import InvalidTransition
from repository_after.service_layer import saga_listing
from repository_after.service_layer.orchestrator import Orchestrator, SagaNotFound
from repository_after.service_layer.saga_types import (
    VIEW_FIELDS,
    DefinitionsChanged,
    UnknownSagaType,
)
from repository_after.service_layer.saga_views import history_rows, saga_view

T = TypeVar("T")
app = typer.Typer(help="Inspect and operate sagas.", no_args_is_help=True)
console = Console()


async def with_orchestrator(fn: Callable[[Orchestrator], Awaitable[T]]) -> T:
    async with orchestrator_session(get_settings()) as orchestrator:
        return await fn(orchestrator)


def run_refusing_changed_definitions(session: Coroutine[Any, Any, T]) -> T:
    """Run `session`; a log with sagas this server would resume with another shape than they
    started with (`DefinitionsChanged`) is one message and exit 2, as `sagabank serve` says it."""
    try:
        return asyncio.run(session)
    except DefinitionsChanged as exc:
        console.print(str(exc), style="red", soft_wrap=True, markup=False, highlight=False)
        raise typer.Exit(2) from None


def _run(fn: Callable[[Orchestrator], Awaitable[T]]) -> T:
    try:
        return run_refusing_changed_definitions(with_orchestrator(fn))
    except SagaNotFound as exc:
        console.print(f"[red]no saga {exc.args[0]!r}[/red]")
        raise typer.Exit(1) from exc
    except InvalidTransition as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc


@app.command("list")
def list_sagas(
    saga_type: Annotated[
        str | None, typer.Option("--type", help="only sagas of this type (e.g. order)")
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", "--state", help="only sagas in this status")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many sagas")] = 50,
) -> None:
    """Recent sagas (of every type, or of `--type`), newest first, and how many sagas each
    type has in each status. A type or a status no saga can have: exit 2."""

    async def go(o: Orchestrator) -> dict[str, Any]:
        return await saga_listing.list_sagas(
            log=o.log, types=saga_types(), saga_type=saga_type, status=status, limit=limit
        )

    try:
        listed = _run(go)
    except (UnknownSagaType, saga_listing.UnknownStatus) as exc:
        console.print(exc.args[0], style="red", markup=False, highlight=False)
        raise typer.Exit(2) from None
    table = Table("type", "transaction id", "status", "parameters", "created", "updated")
    for view in listed["sagas"]:
        params = {k: v for k, v in view.items() if k not in VIEW_FIELDS}
        table.add_row(
            view["saga"],
            view["transaction_id"],
            view["status"],
            json.dumps(params),
            view["created_at"],
            view["updated_at"],
        )
    console.print(table)
    by_type = listed["counts"] if saga_type is None else {saga_type: listed["counts"]}
    counts = Table("type", "status", "sagas")
    for name, by_status in by_type.items():
        for state, n in by_status.items():
            if n:
                counts.add_row(name, state, str(n))
    console.print(counts if counts.rows else "no sagas")


@app.command()
def show(
    saga_id: Annotated[str, typer.Argument(help="the saga's transaction id")],
) -> None:
    """One saga's parameters, status and every attempt of every operation."""

    async def go(o: Orchestrator) -> None:
        stored = await o.get(saga_id)
        view = saga_view(stored=stored, state=o.state_of(stored))
        console.print(
            f"[bold]{view['saga']} {saga_id}[/bold]: {view['status']} {json.dumps(stored.params)}"
        )
        if view["parked_reason"]:
            console.print(f"parked: {view['parked_reason']}")
        table = Table("at", "event", "step", "operation", "attempt", "outcome", "code", "detail")
        for row in history_rows(stored):
            table.add_row(*row)
        console.print(table)

    _run(go)


@app.command()
def retry(
    saga_id: Annotated[str, typer.Argument(help="the parked saga's transaction id")],
    note: Annotated[str, typer.Option(help="recorded in the saga's history")] = (
        "retried from the CLI"
    ),
) -> None:
    """Resume a parked saga where it stopped."""
    state = _run(lambda o: o.retry(saga_id, note=note))
    console.print(f"{saga_id}: {state.status}")


@app.command()
def resolve(
    saga_id: Annotated[str, typer.Argument(help="the parked saga's transaction id")],
    note: Annotated[str, typer.Option(help="what was fixed by hand; recorded in the history")] = (
        "resolved from the CLI"
    ),
) -> None:
    """Close a parked saga after fixing it by hand (recorded with the note)."""
    state = _run(lambda o: o.resolve(saga_id, note=note))
    console.print(f"{saga_id}: {state.status}")
