"""`count_settlements` reads how each unknown outcome ended from saga events alone."""

from __future__ import annotations

from repository_after.domain.saga import EventKind, Outcome, SagaEvent, StepRole
from repository_after.service_layer.settlements import count_settlements


def attempt(step: str, role: StepRole, outcome: Outcome, result: str | None = None) -> SagaEvent:
    kind = EventKind.ATTEMPT
    return SagaEvent(kind, at="t", step=step, role=role, outcome=outcome, result=result)


def exhausted(step: str) -> SagaEvent:
    return SagaEvent(EventKind.RETRIES_EXHAUSTED, at="t", step=step, role=StepRole.ACTION)


A, S, C = StepRole.ACTION, StepRole.SETTLEMENT, StepRole.COMPENSATION
OK, UNKNOWN = Outcome.SUCCEEDED, Outcome.UNKNOWN


def test_each_way_an_unknown_outcome_ends_is_counted_once() -> None:
    clean = [attempt("debit", A, OK), attempt("credit", A, OK)]
    retried = [attempt("debit", A, OK), attempt("credit", A, UNKNOWN), attempt("credit", A, OK)]
    landed = [
        attempt("debit", A, OK),
        attempt("credit", A, UNKNOWN),
        exhausted("credit"),
        attempt("credit", S, OK, "already_applied"),
    ]
    voided = [
        attempt("debit", A, OK),
        attempt("credit", A, UNKNOWN),
        exhausted("credit"),
        attempt("credit", S, OK, "voided"),
        attempt("debit", C, OK),
    ]
    lost_debit = [attempt("debit", A, UNKNOWN), exhausted("debit"), attempt("debit", C, OK)]
    totals = count_settlements([clean, retried, landed, voided, lost_debit])
    assert totals.as_dict() == {
        "retried_to_success": 1,
        "settled_already_applied": 1,
        "settled_voided": 1,
        "compensated_after_unknown": 1,
    }


def test_a_clean_run_counts_nothing() -> None:
    clean = [attempt("debit", A, OK), attempt("credit", A, OK)]
    assert set(count_settlements([clean, clean]).as_dict().values()) == {0}
