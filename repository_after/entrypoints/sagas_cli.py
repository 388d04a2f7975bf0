"""`sagabank sagas list|show|retry|resolve`: the operator's view of the saga log.

Run them against the orchestrator's database (`SAGABANK_DATABASE_URL`). `list` and `show` only
read: they open the saga log alone (no participant, no service settings) and work even when the
log holds sagas whose definition this server defines with another shape, showing each saga's
stored definition (name, version, shape hash) and marking those that differ (`saga_views`).
`retry` and `resolve` go through the same `Orchestrator` methods as the HTTP admin endpoints and
refuse such a log, exit 2, as `sagabank serve` does (`DefinitionsChanged`); `retry` calls the
services the saga's steps name. Retry a parked saga only while no other process drives it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from repository_after.bootstrap import build_saga_log, orchestrator_session, saga_types
from repository_after.config import get_settings
from repository_after.domain.saga import InvalidTransition
from repository_after.service_layer.orchestrator import Orchestrator, SagaNotFound
from repository_after.service_layer.saga_ports import SagaLog
from repository_after.service_layer.saga_types import DefinitionsChanged, SagaTypes
from repository_after.service_layer.saga_views import definition_view, history_rows, log_view

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


def _read(fn: Callable[[SagaLog, SagaTypes], Awaitable[T]]) -> T:
    """Run a read-only command over the saga log alone, with this server's saga types."""

    async def go() -> T:
        log = build_saga_log(get_settings().database_url)
        try:
            return await fn(log, saga_types())
        finally:
            await log.close()

    return asyncio.run(go())


def _definition(view: dict[str, Any]) -> Text:
    """`transfer v1 <shape hash>`, and below it, in red, how this server's differs."""
    text = Text(f"{view['name']} v{view['version']} {view['shape_hash']}")
    if view["changed"]:
        text.append(f"\n{view['changed']}", style="red")
    return text


@app.command("list")
def list_sagas(
    state: Annotated[str | None, typer.Option(help="only this status")] = None,
    limit: Annotated[int, typer.Option(min=1, help="at most this many sagas")] = 50,
) -> None:
    """Recent sagas, newest first, and the count in each status; each saga's definition (name,
    version, shape hash), marked when this server defines it with another shape."""

    async def go(log: SagaLog, types: SagaTypes) -> None:
        rows = await log.list_recent(status=state, limit=limit)
        table = Table("transaction id", "definition", "status", "parameters", "created", "updated")
        for r in rows:
            definition = definition_view(
                types, name=r.definition, version=r.definition_version, shape_hash=r.definition_hash
            )
            table.add_row(
                r.saga_id,
                _definition(definition),
                r.status,
                Text(json.dumps(r.params)),
                r.created_at,
                r.updated_at,
            )
        console.print(table)
        console.print(await log.count_by_status())

    _read(go)


@app.command()
def show(
    saga_id: Annotated[str, typer.Argument(help="the saga's transaction id")],
) -> None:
    """One saga's parameters, status, definition and every event of its history."""

    async def go(log: SagaLog, types: SagaTypes) -> None:
        stored = await log.load(saga_id)
        if stored is None:
            console.print(f"[red]no saga {saga_id!r}[/red]")
            raise typer.Exit(1)
        view = log_view(stored=stored, types=types)
        console.print(
            f"[bold]{view['saga']} {saga_id}[/bold]: {view['status']} {json.dumps(stored.params)}",
            markup=True,
            highlight=False,
        )
        console.print(Text("definition: ").append_text(_definition(view["definition"])))
        if view["definition"]["changed"]:
            console.print(
                "shown as the log holds it, not replayed under this server's shape; while it is "
                "unfinished, serve, recover and sagas retry|resolve refuse the log until that "
                "version is registered as it was",
                style="red",
                soft_wrap=True,
            )
        if view["parked_reason"]:
            console.print(f"parked: {view['parked_reason']}")
        table = Table("at", "event", "step", "operation", "attempt", "outcome", "code", "detail")
        for row in history_rows(stored):
            table.add_row(*(Text(cell) for cell in row))
        console.print(table)

    _read(go)


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
