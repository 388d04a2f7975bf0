"""The A → B → C failure matrix as data: every row's failing service, its fault, and EXACTLY what
the services answered, in order, with the saga's final status and the rows left in the tables.

`tests/integration/test_abc_failure_matrix.py` runs each row against the real orchestrator over
HTTP and compares; docs/sagas.md carries the same table, rendered by `render` (a test checks
the two are equal; `python -m tests.integration.abc_matrix --write` rewrites the doc's table).

A call reads `<service>.<operation> <status> <word>`: `(replay)` when the kit replayed its
recorded answer, `answer lost` when the call applied but its answer was dropped (500),
`answered late` when the answer was held past the orchestrator's attempt timeout (a `slow`
fault): the orchestrator never read it. Calls are listed in the order the services answered
them, so a late answer comes after what happened meanwhile. The orchestrator makes 3 attempts
per action (`MAX_ATTEMPTS`). A fault hits every call of the failing service's `do`, or with
`once` in the row's name its first call only.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from repository_after.services.switched import Fault

MAX_ATTEMPTS = 3
DOC = Path(__file__).resolve().parents[2] / "docs" / "sagas.md"
BEGIN, END = "<!-- abc-matrix:begin -->", "<!-- abc-matrix:end -->"


@dataclass(frozen=True)
class Row:
    service: str | None  # the failing service, None: nothing fails
    fault: Fault | None
    times: int | None  # calls the fault hits; None: every call
    status: str  # the saga's final status
    left: str  # the services whose table keeps the saga's row ("" for none)
    calls: tuple[str, ...]

    @property
    def id(self) -> str:
        return self.name.replace(" ", "-")

    @property
    def name(self) -> str:
        if self.service is None or self.fault is None:
            return "none"
        return f"{self.service} {self.fault.value}" + (" once" if self.times == 1 else "")


ROWS: tuple[Row, ...] = (
    Row(None, None, None, "completed", "ABC", ("A.do 200 done", "B.do 200 done", "C.do 200 done")),
    # -- A fails ------------------------------------------------------------------------------
    Row("A", Fault.REFUSE, None, "rejected", "", ("A.do 409 refused",)),
    Row(
        "A",
        Fault.UNKNOWN_BEFORE,
        1,
        "completed",
        "ABC",
        ("A.do 500 injected_fault", "A.do 200 done", "B.do 200 done", "C.do 200 done"),
    ),
    Row(
        "A",
        Fault.UNKNOWN_BEFORE,
        None,
        "compensated",
        "",
        (
            "A.do 500 injected_fault",
            "A.do 500 injected_fault",
            "A.do 500 injected_fault",
            "A.undo 200 nothing_to_compensate",
        ),
    ),
    Row(
        "A",
        Fault.UNKNOWN_AFTER,
        1,
        "completed",
        "ABC",
        ("A.do 200 done, answer lost", "A.do 200 done (replay)", "B.do 200 done", "C.do 200 done"),
    ),
    Row(
        "A",
        Fault.UNKNOWN_AFTER,
        None,
        "compensated",
        "",
        (
            "A.do 200 done, answer lost",
            "A.do 200 done (replay), answer lost",
            "A.do 200 done (replay), answer lost",
            "A.undo 200 undone",
        ),
    ),
    Row(
        "A",
        Fault.SLOW_BEFORE,
        1,
        "completed",
        "ABC",
        (
            "A.do 200 done",
            "B.do 200 done",
            "C.do 200 done",
            "A.do 200 done (replay), answered late",
        ),
    ),
    Row(
        "A",
        Fault.SLOW_BEFORE,
        None,
        "compensated",
        "",
        (
            "A.undo 200 nothing_to_compensate",
            "A.do 409 transaction_compensated, answered late",
            "A.do 409 transaction_compensated, answered late",
            "A.do 409 transaction_compensated, answered late",
        ),
    ),
    Row(
        "A",
        Fault.SLOW_AFTER,
        1,
        "completed",
        "ABC",
        (
            "A.do 200 done (replay)",
            "B.do 200 done",
            "C.do 200 done",
            "A.do 200 done, answered late",
        ),
    ),
    Row(
        "A",
        Fault.SLOW_AFTER,
        None,
        "compensated",
        "",
        (
            "A.undo 200 undone",
            "A.do 200 done, answered late",
            "A.do 200 done (replay), answered late",
            "A.do 200 done (replay), answered late",
        ),
    ),
    # -- B fails: A is compensated --------------------------------------------------------------
    Row(
        "B",
        Fault.REFUSE,
        None,
        "compensated",
        "",
        ("A.do 200 done", "B.do 409 refused", "A.undo 200 undone"),
    ),
    Row(
        "B",
        Fault.UNKNOWN_BEFORE,
        1,
        "completed",
        "ABC",
        ("A.do 200 done", "B.do 500 injected_fault", "B.do 200 done", "C.do 200 done"),
    ),
    Row(
        "B",
        Fault.UNKNOWN_BEFORE,
        None,
        "compensated",
        "",
        (
            "A.do 200 done",
            "B.do 500 injected_fault",
            "B.do 500 injected_fault",
            "B.do 500 injected_fault",
            "B.undo 200 nothing_to_compensate",
            "A.undo 200 undone",
        ),
    ),
    Row(
        "B",
        Fault.UNKNOWN_AFTER,
        1,
        "completed",
        "ABC",
        ("A.do 200 done", "B.do 200 done, answer lost", "B.do 200 done (replay)", "C.do 200 done"),
    ),
    Row(
        "B",
        Fault.UNKNOWN_AFTER,
        None,
        "compensated",
        "",
        (
            "A.do 200 done",
            "B.do 200 done, answer lost",
            "B.do 200 done (replay), answer lost",
            "B.do 200 done (replay), answer lost",
            "B.undo 200 undone",
            "A.undo 200 undone",
        ),
    ),
    Row(
        "B",
        Fault.SLOW_BEFORE,
        1,
        "completed",
        "ABC",
        (
            "A.do 200 done",
            "B.do 200 done",
            "C.do 200 done",
            "B.do 200 done (replay), answered late",
        ),
    ),
    Row(
        "B",
        Fault.SLOW_BEFORE,
        None,
        "compensated",
        "",
        (
            "A.do 200 done",
            "B.undo 200 nothing_to_compensate",
            "A.undo 200 undone",
            "B.do 409 transaction_compensated, answered late",
            "B.do 409 transaction_compensated, answered late",
            "B.do 409 transaction_compensated, answered late",
        ),
    ),
    Row(
        "B",
        Fault.SLOW_AFTER,
        1,
        "completed",
        "ABC",
        (
            "A.do 200 done",
            "B.do 200 done (replay)",
            "C.do 200 done",
            "B.do 200 done, answered late",
        ),
    ),
    Row(
        "B",
        Fault.SLOW_AFTER,
        None,
        "compensated",
        "",
        (
            "A.do 200 done",
            "B.undo 200 undone",
            "A.undo 200 undone",
            "B.do 200 done, answered late",
            "B.do 200 done (replay), answered late",
            "B.do 200 done (replay), answered late",
        ),
    ),
    # -- C fails: B, then A are compensated (and C itself when its outcome stayed unknown) -------
    Row(
        "C",
        Fault.REFUSE,
        None,
        "compensated",
        "",
        (
            "A.do 200 done",
            "B.do 200 done",
            "C.do 409 refused",
            "B.undo 200 undone",
            "A.undo 200 undone",
        ),
    ),
    Row(
        "C",
        Fault.UNKNOWN_BEFORE,
        1,
        "completed",
        "ABC",
        ("A.do 200 done", "B.do 200 done", "C.do 500 injected_fault", "C.do 200 done"),
    ),
    Row(
        "C",
        Fault.UNKNOWN_BEFORE,
        None,
        "compensated",
        "",
        (
            "A.do 200 done",
            "B.do 200 done",
            "C.do 500 injected_fault",
            "C.do 500 injected_fault",
            "C.do 500 injected_fault",
            "C.undo 200 nothing_to_compensate",
            "B.undo 200 undone",
            "A.undo 200 undone",
        ),
    ),
    Row(
        "C",
        Fault.UNKNOWN_AFTER,
        1,
        "completed",
        "ABC",
        ("A.do 200 done", "B.do 200 done", "C.do 200 done, answer lost", "C.do 200 done (replay)"),
    ),
    Row(
        "C",
        Fault.UNKNOWN_AFTER,
        None,
        "compensated",
        "",
        (
            "A.do 200 done",
            "B.do 200 done",
            "C.do 200 done, answer lost",
            "C.do 200 done (replay), answer lost",
            "C.do 200 done (replay), answer lost",
            "C.undo 200 undone",
            "B.undo 200 undone",
            "A.undo 200 undone",
        ),
    ),
    Row(
        "C",
        Fault.SLOW_BEFORE,
        1,
        "completed",
        "ABC",
        (
            "A.do 200 done",
            "B.do 200 done",
            "C.do 200 done",
            "C.do 200 done (replay), answered late",
        ),
    ),
    Row(
        "C",
        Fault.SLOW_BEFORE,
        None,
        "compensated",
        "",
        (
            "A.do 200 done",
            "B.do 200 done",
            "C.undo 200 nothing_to_compensate",
            "B.undo 200 undone",
            "A.undo 200 undone",
            "C.do 409 transaction_compensated, answered late",
            "C.do 409 transaction_compensated, answered late",
            "C.do 409 transaction_compensated, answered late",
        ),
    ),
    Row(
        "C",
        Fault.SLOW_AFTER,
        1,
        "completed",
        "ABC",
        (
            "A.do 200 done",
            "B.do 200 done",
            "C.do 200 done (replay)",
            "C.do 200 done, answered late",
        ),
    ),
    Row(
        "C",
        Fault.SLOW_AFTER,
        None,
        "compensated",
        "",
        (
            "A.do 200 done",
            "B.do 200 done",
            "C.undo 200 undone",
            "B.undo 200 undone",
            "A.undo 200 undone",
            "C.do 200 done, answered late",
            "C.do 200 done (replay), answered late",
            "C.do 200 done (replay), answered late",
        ),
    ),
)


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
