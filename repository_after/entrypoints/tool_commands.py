"""Commands that other distributions add to `sagabank`, through an entry-point group.

The developer tools (`sagabank chaos`, `sagabank bench`) live in `sagabank_tools`, outside the
product package: they are clients of the product, and the product never imports them. They are
declared in pyproject.toml under `[project.entry-points."sagabank.commands"]` and found here from
the installed metadata.

Invariants:
- a tool is imported only when its name is looked up (the command runs, or `--help` lists it),
  so `sagabank serve` never imports the bench's or the chaos run's dependencies;
- a tool that is declared but not importable (the Docker image ships only the product package)
  is left out of the listing, and running it prints one line and exits 2: it never breaks the
  other commands;
- a built-in command wins over a tool of the same name.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from importlib.util import find_spec
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperGroup

if TYPE_CHECKING:
    # typer vendors click (>= 0.20); these are the types its command classes are declared with.
    from typer import _click

GROUP = "sagabank.commands"


def declared_tools() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def _importable(ep: EntryPoint) -> bool:
    try:  # imports the parent packages only (their __init__ hold docstrings), not the command
        return find_spec(ep.module) is not None
    except ImportError:
        return False


def _as_command(
    name: str, target: Callable[..., Any] | typer.Typer, **settings: bool
) -> _click.Command:
    if isinstance(target, typer.Typer):
        return typer.main.get_command(target)
    single = typer.Typer(add_completion=False)
    single.command(name=name, context_settings=settings)(target)
    return typer.main.get_command(single)


def _unavailable(name: str, error: ImportError) -> _click.Command:
    def missing() -> None:
        typer.echo(
            f"sagabank {name} is not installed here ({error}); it is a development tool: "
            "run it from a source checkout after `make install`",
            err=True,
        )
        raise typer.Exit(2)

    missing.__doc__ = f"Not installed here: {name} ships with the source checkout."
    # Whatever options were given, the answer is this one line (not "no such option").
    return _as_command(name, missing, ignore_unknown_options=True, allow_extra_args=True)


class ToolCommandsGroup(TyperGroup):
    """The `sagabank` group: its own commands, then the declared tools that can be imported."""

    def list_commands(self, ctx: _click.Context) -> list[str]:
        own = super().list_commands(ctx)
        tools = declared_tools()
        return own + sorted(n for n, ep in tools.items() if n not in own and _importable(ep))

    def get_command(self, ctx: _click.Context, cmd_name: str) -> _click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is not None:
            return found
        ep = declared_tools().get(cmd_name)
        if ep is None:
            return None
        try:
            target = ep.load()
        except ImportError as exc:
            return _unavailable(cmd_name, exc)
        return _as_command(cmd_name, target)
