"""The `sagabank chaos` command line: bad options are refused before any process starts."""

from __future__ import annotations

from typer.testing import CliRunner

from repository_after.entrypoints.cli import app


def test_an_unknown_fault_family_is_refused_with_usage_error() -> None:
    result = CliRunner().invoke(app, ["chaos", "--faults", "delay,meteor"])
    assert result.exit_code == 2
    assert "unknown fault family: meteor" in result.output


def test_a_family_of_another_saga_is_refused_with_usage_error() -> None:
    result = CliRunner().invoke(app, ["chaos", "--faults", "delay,reserve-after"])
    assert result.exit_code == 2
    assert "not a transfer family: reserve-after" in result.output


def test_an_unknown_saga_type_is_refused_with_usage_error() -> None:
    result = CliRunner().invoke(app, ["chaos", "--saga", "payroll"])
    assert result.exit_code == 2
    assert "payroll" in result.output
