"""The developer tools reach `sagabank` through entry points (`entrypoints/tool_commands.py`):
imported only when asked for, and a declared tool that is not installed (the Docker image) breaks
nothing."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from typer.testing import CliRunner

from repository_after.entrypoints import tool_commands
from repository_after.entrypoints.cli import app
from tests.unit.test_domain_is_pure import imported_modules

PRODUCT = Path(__file__).resolve().parents[2] / "repository_after"

LOADED = """
import sys
from typer.testing import CliRunner
from repository_after.entrypoints.cli import app
for args in {args!r}:
    assert CliRunner().invoke(app, args).exit_code == 0, args
print(sorted({{m.split(".")[0] for m in sys.modules}} & {{"sagabank_tools", "cqrs", "sqlalchemy"}}))
"""


def _top_modules_after(*args: list[str]) -> str:
    code = LOADED.format(args=list(args))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_other_commands_do_not_import_the_tools() -> None:
    assert _top_modules_after(["serve", "--help"], ["audit", "--help"]) == "[]"


def test_a_tool_is_imported_when_it_is_asked_for() -> None:
    assert _top_modules_after(["chaos", "--help"]) == "['sagabank_tools']"


@pytest.fixture
def ghost_tool(monkeypatch: pytest.MonkeyPatch) -> None:
    ghost = EntryPoint(
        name="ghost", value="sagabank_no_such_tool.cli:ghost", group=tool_commands.GROUP
    )
    monkeypatch.setattr(tool_commands, "declared_tools", lambda: {"ghost": ghost})


@pytest.mark.usefixtures("ghost_tool")
def test_a_declared_tool_that_is_not_installed_is_not_listed() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "serve" in result.output
    assert "ghost" not in result.output


@pytest.mark.usefixtures("ghost_tool")
def test_running_a_tool_that_is_not_installed_says_so_in_one_line() -> None:
    result = CliRunner().invoke(app, ["ghost", "--seed", "1"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "sagabank ghost is not installed here" in lines[0]
    assert "make install" in lines[0]


def test_the_product_never_imports_the_tools() -> None:
    files = sorted(PRODUCT.rglob("*.py"))
    assert len(files) > 40
    offenders = [
        f"{path.relative_to(PRODUCT)}: {module}"
        for path in files
        for module in imported_modules(path)
        if module.split(".")[0] == "sagabank_tools"
    ]
    assert offenders == []
