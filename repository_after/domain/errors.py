"""Business rejections: definite answers, never retried.

Each error carries a stable machine code (part of the HTTP contract) and the HTTP status it maps
to. The mapping lives here, beside the codes, so the edge has one table to consult; the domain
itself never imports a web framework.

    BusinessError
    ├── AccountNotFound          404 account_not_found
    ├── AccountExists            409 account_exists
    ├── InsufficientFunds        409 insufficient_funds
    ├── TransactionCompensated   409 transaction_compensated   (debit after its compensation)
    ├── TransactionVoided        409 transaction_voided        (credit after its void)
    ├── TransferCredited         409 transfer_credited         (compensation after the credit)
    ├── TransferCompensated      409 transfer_compensated      (credit after the compensation)
    ├── BalanceLimitExceeded     409 balance_limit_exceeded    (credit past MAX_BALANCE)
    ├── IdempotencyKeyReused     422 idempotency_key_reused    (same id, different request)
    ├── SameAccount              422 same_account              (a transfer to its own source)
    └── TransactionIdTooLong     422 transaction_id_too_long   (a saga id its keys outgrow)
"""

from __future__ import annotations


class BusinessError(Exception):
    code = "business_error"
    http_status = 409

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AccountNotFound(BusinessError):
    code = "account_not_found"
    http_status = 404


class AccountExists(BusinessError):
    code = "account_exists"
    http_status = 409


class InsufficientFunds(BusinessError):
    code = "insufficient_funds"
    http_status = 409


class TransactionCompensated(BusinessError):
    code = "transaction_compensated"
    http_status = 409


class TransactionVoided(BusinessError):
    code = "transaction_voided"
    http_status = 409


class TransferCredited(BusinessError):
    """A `compensate_debit` for a saga whose credit applied: refunding it would create money."""

    code = "transfer_credited"
    http_status = 409


class TransferCompensated(BusinessError):
    """A `credit` for a saga whose debit was compensated: paying it would create money."""

    code = "transfer_compensated"
    http_status = 409


class IdempotencyKeyReused(BusinessError):
    code = "idempotency_key_reused"
    http_status = 422


class BalanceLimitExceeded(BusinessError):
    code = "balance_limit_exceeded"
    http_status = 409


class SameAccount(BusinessError):
    """A transfer whose source is its target: refused before a saga is logged."""

    code = "same_account"
    http_status = 422


class TransactionIdTooLong(BusinessError):
    """A saga id too long for the keys its saga type sends (`<id>:<step>` past a participant's
    limit): refused before the saga is logged, or every call would be refused after."""

    code = "transaction_id_too_long"
    http_status = 422


def error_body(code: str, message: str) -> dict[str, object]:
    """The one JSON shape of every error answer, recorded or raised."""
    return {"error": code, "message": message}
