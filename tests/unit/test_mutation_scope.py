"""The mutation scope (`[tool.mutmut]` in pyproject.toml) names modules that exist.

`make mutate` silently mutates nothing for a path that matches no file: a module renamed or
split would drop out of mutation testing without anyone noticing. This keeps the list honest,
and keeps every deselected test file real (a typo would quietly widen the run).
"""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path
from types import ModuleType

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


def _report() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "mutation_report", ROOT / "scripts/mutation_report.py"
    )
    assert spec is not None
    assert spec.loader is not None
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    return report


DOC = "\n".join(
    [
        "#### repository_after.a",
        "| mutant | change | verdict |",
        "|---|---|---|",
        "| `x_f__mutmut_1` | `<` → `<=` | killed by `tests/unit/test_a.py::test_f` |",
        "| `x_f__mutmut_2` | `'SELECT'` → `'select'` | equivalent: SQL ignores case |",
        "| `x_f__mutmut_3` | `1` → `2` | OPEN: not triaged |",
        "#### repository_after.b",
        "| `x_g__mutmut_1` | `a` → `b` | gone (the line was removed) |",
        "| `x_f__mutmut_2` | `None` → `False` | equivalent: read only as a truth value |",
    ]
)


def test_the_report_reads_each_row_s_verdict_under_its_module() -> None:
    assert _report().verdict_rows(DOC) == {
        "repository_after.a.x_f__mutmut_1": "killed",
        "repository_after.a.x_f__mutmut_2": "equivalent",
        "repository_after.a.x_f__mutmut_3": "OPEN",
        "repository_after.b.x_g__mutmut_1": "gone",
        "repository_after.b.x_f__mutmut_2": "equivalent",
    }


def test_only_an_equivalent_row_explains_a_survivor() -> None:
    """A kill must be mutmut's own (the mutant re-run), not a row's claim; OPEN explains nothing."""
    assert _report().explained(DOC) == {
        "repository_after.a.x_f__mutmut_2",
        "repository_after.b.x_f__mutmut_2",
    }
