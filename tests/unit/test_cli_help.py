"""Every command of `sagabank`, the tools found through entry points included, documents every
option and argument it takes (what `--help` shows)."""

from __future__ import annotations

from typing import Any

import typer

from repository_after.entrypoints.cli import app
from repository_after.entrypoints.tool_commands import declared_tools


def _walk(command: Any, ctx: typer.Context, path: str) -> dict[str, Any]:
    """Every command under `command` by its full name, loaded as the CLI loads it."""
    found = {path: command}
    if not hasattr(command, "list_commands"):
        return found
    for name in command.list_commands(ctx):
        sub = command.get_command(ctx, name)
        assert sub is not None, f"{path} {name} is listed but cannot be loaded"
        found.update(_walk(sub, typer.Context(sub, parent=ctx, info_name=name), f"{path} {name}"))
    return found


def _commands() -> dict[str, Any]:
    root = typer.main.get_command(app)
    return _walk(root, typer.Context(root, info_name="sagabank"), "sagabank")


def test_the_walk_reaches_the_tools_and_every_subcommand() -> None:
    assert {"chaos", "bench"} <= set(declared_tools())
    commands = _commands()
    expected = {"serve", "demo", "audit", "recover", "gc", "sagas", "chaos", "bench"}
    assert {f"sagabank {n}" for n in expected} <= set(commands)
    assert {f"sagabank sagas {n}" for n in ("list", "show", "retry", "resolve")} <= set(commands)


def test_every_option_and_argument_has_help() -> None:
    missing = [
        f"{path}: {param.name}"
        for path, command in _commands().items()
        for param in command.params
        if not (getattr(param, "help", None) or "").strip()
    ]
    assert missing == []
