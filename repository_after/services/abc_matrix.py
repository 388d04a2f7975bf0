"""The A → B → C failure matrix as data (`services/abc.py`'s saga, `domain/abc.py`): every row's
failing service, its fault, and EXACTLY what the services answer, in order, with the saga's final
status and the services whose table keeps the saga's row.

One table, read by everything that runs the matrix: `tests/integration/test_abc_failure_matrix.py`
(in-process services sharing one journal), `sagabank demo --saga abc` (three service processes
and an orchestrator process, `entrypoints/abc_demo.py`), and docs/sagas.md, which shows it
(rendered by `tests/integration/abc_matrix.py`; a test keeps the two equal).

A call reads `<service>.<operation> <status> <word>`: `(replay)` when the kit replayed its
recorded answer, `answer lost` when the call applied but its answer was dropped (500),
`answered late` when the answer was held past the orchestrator's attempt timeout (a `slow`
fault): the orchestrator never read it. Calls are listed in the order the services answered
them, so a late answer comes after what happened meanwhile. The orchestrator makes 3 attempts
per action (`MAX_ATTEMPTS`). A fault hits every call of the failing service's `do`, or with
`once` in the row's name its first call only.
"""

from __future__ import annotations

from dataclasses import dataclass

from repository_after.services.switched import Fault

MAX_ATTEMPTS = 3


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


def find_row(service: str | None, fault: Fault | None, times: int | None) -> Row:
    """The row of `service` failing with `fault` (`times`: 1 for `once`, None for every call);
    `service` None: the row where nothing fails. KeyError if the matrix has no such row."""
    for row in ROWS:
        if (row.service, row.fault, row.times) == (service, fault, times):
            return row
    raise KeyError(f"no row {service}:{fault}:{times}")
