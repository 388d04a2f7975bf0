"""The domain layer imports only the standard library and other domain modules."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[2] / "repository_after" / "domain"


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def is_allowed(module: str) -> bool:
    root = module.split(".")[0]
    return root in sys.stdlib_module_names or module.startswith(
        ("__future__", "repository_after.domain")
    )


def test_domain_modules_import_only_the_standard_library() -> None:
    files = sorted(DOMAIN.glob("*.py"))
    assert len(files) >= 4
    for path in files:
        foreign = sorted(m for m in imported_modules(path) if not is_allowed(m))
        assert not foreign, f"{path.name} imports {foreign}"


def test_the_purity_check_would_catch_a_framework_import() -> None:
    assert not is_allowed("fastapi")
    assert not is_allowed("repository_after.adapters.sqlite_db")
