"""The doc's view of the A → B → C failure matrix (`repository_after/services/abc_matrix.py`,
the table itself, which the demo reads too): docs/sagas.md carries it, rendered by `render` (a
test checks the two are equal; `python -m tests.integration.abc_matrix --write` rewrites the
doc's table). `ROWS`, `Row` and `MAX_ATTEMPTS` are re-exported for the tests.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from repository_after.services.abc_matrix import MAX_ATTEMPTS as MAX_ATTEMPTS
from repository_after.services.abc_matrix import ROWS as ROWS
from repository_after.services.abc_matrix import Row as Row

DOC = Path(__file__).resolve().parents[2] / "docs" / "sagas.md"
BEGIN, END = "<!-- abc-matrix:begin -->", "<!-- abc-matrix:end -->"


def render() -> str:
    """The doc's table: one line per row, its calls joined by arrows."""
    lines = [
        "| fails | saga ends | rows left | the calls the services answered, in order |",
        "|---|---|---|---|",
    ]
    for row in ROWS:
        calls = " → ".join(f"`{call}`" for call in row.calls)
        left = ", ".join(row.left) or "none"
        lines.append(f"| {row.name} | {row.status} | {left} | {calls} |")
    return "\n".join(lines)


def _section(text: str) -> re.Match[str]:
    found = re.search(re.escape(BEGIN) + r"\n(.*?)" + re.escape(END), text, re.DOTALL)
    assert found is not None, f"{DOC} has no {BEGIN} … {END} section"
    return found


def doc_table(text: str) -> str:
    """What docs/sagas.md holds between the matrix's markers."""
    return _section(text).group(1).rstrip("\n")


def write_doc() -> None:
    text = DOC.read_text()
    start, end = _section(text).span(1)
    DOC.write_text(text[:start] + render() + "\n" + text[end:])


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m tests.integration.abc_matrix --write  (rewrites docs/sagas.md)")
    write_doc()
