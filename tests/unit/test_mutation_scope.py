"""The mutation scope (`[tool.mutmut]` in pyproject.toml) names modules that exist.

`make mutate` silently mutates nothing for a path that matches no file: a module renamed or
split would drop out of mutation testing without anyone noticing. This keeps the list honest,
and keeps every deselected test file real (a typo would quietly widen the run).
"""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]


def test_every_module_in_the_mutation_scope_exists() -> None:
    missing = [path for path in CONFIG["only_mutate"] if not (ROOT / path).is_file()]
    assert missing == []
    assert len(CONFIG["only_mutate"]) >= 20


def test_every_test_file_left_out_of_mutation_runs_exists() -> None:
    args = CONFIG["pytest_add_cli_args"]
    left_out = [args[i + 1] for i, arg in enumerate(args) if arg == "--deselect"]
    assert left_out, "no test file is deselected: the list was lost"
    assert [path for path in left_out if not (ROOT / path).is_file()] == []
